"""Storage faults against the real ``capture-bridge serve``: a full disk (a small tmpfs) during a real
codex turn, and a damaged page in the store. Each is a fact in the capture mode, nothing captured is
lost while space is short (or it is reconciled from a snapshot), and the bridge recovers by itself."""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from bridge.drill.fake_model import FakeModel, chat_reply
from tests.peers.conftest import fake_model  # noqa: F401  (shared fixture: the fake Responses API)
from tests.receiver.payloads import claude_logs
from tests.receiver.support import post
from tests.stream.support import LIVE, streaming_bridge
from tests.support.host import Host, HostError, spawn_bridge

TRANSITION = "capture-reliability-transition"
BASELINE = {"autoIngestEnabled": True, "otlpReceiver": {"port": 0}}


@contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A small tmpfs at ``where`` (we run as root inside the fence); skipped only where mounting is impossible."""
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True, text=True, check=False)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(path: Path) -> int:
    """Write ``path`` until the file system is full; returns how many bytes it took."""
    written = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for chunk in (1 << 20, 4096, 512):
            block = b"\0" * chunk
            while True:
                try:
                    n = os.write(fd, block)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc
                    break
                written += n
                if n < chunk:
                    break
    finally:
        os.close(fd)
    return written


def fill_store_slack(store: Path) -> int:
    """Use up the room the store's WAL file already has (SQLite rewrites it in place after a checkpoint, so
    a full disk alone may not fail a small write); returns how many rows it took. Call after :func:`fill`.

    Writes 64 KiB rows under keys of its own into ``kv`` until SQLite answers that the disk is full; a
    checkpoint cannot make room again, since copying them would grow the store file itself.
    """
    rows = 0
    conn = sqlite3.connect(store, timeout=30)
    try:
        while rows < 10_000:
            try:
                conn.execute(
                    "INSERT INTO kv (key, value, updated_at_ms) VALUES (?, ?, 0)", (f"test.slack.{rows}", b"\0" * 65536)
                )
                conn.commit()
            except sqlite3.OperationalError as exc:
                assert "full" in str(exc), exc
                conn.rollback()
                return rows
            rows += 1
    finally:
        conn.close()
    raise AssertionError("the store never filled")


async def until(what: str, check: Callable[[], Any], timeout: float = 60) -> Any:
    """Poll ``check`` (an async callable) until it returns something truthy; fail naming ``what``."""
    last: Any = None
    with anyio.move_on_after(timeout):
        while True:
            last = await check()
            if last:
                return last
            await anyio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


async def status(host: Host) -> dict[str, Any]:
    result: dict[str, Any] = await host.call("get_capture_reliability_status")
    return result


async def post_logs(host: Host, *sequences: int) -> Any:
    endpoint = (await host.call("get_otlp_receiver_status"))["endpoint"]
    key = (host.data_dir / "otlp.key").read_text().strip()
    return await post(endpoint, "/v1/logs", claude_logs(*sequences).SerializeToString(), key=key)


@pytest.mark.peer
@pytest.mark.parametrize("hold", ["64MiB", "4KiB"])
async def test_disk_full_during_a_real_turn_is_failure_and_recovers_by_itself(
    tmp_path: Path,
    fake_model: FakeModel,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    hold: str,
) -> None:
    """Disk full mid-turn: FAILURE naming the data dir at once, batches held (or, past a tiny bound, dropped
    as a counted gap), OTLP 503 + Retry-After, -32040 from a command; space returns → committed, back."""
    if hold == "4KiB":
        monkeypatch.setenv("CAPTURE_BRIDGE_HOLD_BYTES", "4096")
    data = tmp_path / "data"
    with tmpfs(data, "16m"):
        async with streaming_bridge(tmp_path, fake_model.base_url, **BASELINE) as (host, thread_id):
            await until("HYBRID_ACTIVE", lambda: _mode_is(host, "HYBRID_ACTIVE"), timeout=30)
            filler = data / "filler"
            fill(filler)
            fill_store_slack(data / "capture.sqlite3")  # the capture's next writes need new room
            since = len(host.notifications)
            turn = await host.call(
                "codex_app_server_turn_start", {"threadId": thread_id, "text": "[[scenario:chat]] hi"}
            )
            turn_id = turn["turn"]["id"]

            failure = await host.wait_for(TRANSITION, lambda p: p["toMode"] == "FAILURE", timeout=60, since=since)
            assert str(data) in failure["reason"] and "the disk is full" in failure["reason"], failure
            now = await status(host)
            assert now["mode"] == "FAILURE" and not now["otelBaselineHealthy"]
            assert now["facts"]["storeWritable"] is False
            assert now["metrics"]["storeProblem"] == "disk_full"

            # a command that must write answers a storage error, and changes nothing
            with pytest.raises(HostError) as refused:
                await host.call("set_ingest_config", {"retentionDays": 7})
            assert refused.value.code == -32040 and refused.value.data["kind"] == "storage_unavailable"
            assert str(data) in refused.value.message
            assert (await host.call("get_ingest_config"))["retentionDays"] != 7

            # the receiver tells exporters to come back instead of losing the batch
            reply = await post_logs(host, 1, 2, 3)
            assert reply.status == 503 and reply.headers.get("retry-after") == "2", reply
            assert "cannot store" in reply.status_message()

            # the turn goes on in codex; its events are held (or dropped past the tiny bound)
            if hold == "4KiB":
                await until("a counted gap", lambda: _metric(host, "storeGapBatches"), timeout=90)
            else:
                await until("held batches", lambda: _metric(host, "storeHeldBatches"), timeout=60)
            await _quiet(host)

            os.unlink(filler)  # space returns: nobody asks, the probe finds out
            freed = time.monotonic()
            back = await host.wait_for(
                TRANSITION, lambda p: p["fromMode"] == "FAILURE" and p["toMode"] == "HYBRID_ACTIVE", timeout=30,
                since=since,
            )  # fmt: skip
            print(f"[figure] hold={hold}: out of FAILURE {time.monotonic() - freed:.2f} s after space returned")
            assert back["reason"].startswith("The OTEL baseline is receiving")

            thread = await until("the turn completed in the store", lambda: _completed(host, thread_id, turn_id))
            [captured] = [t for t in thread["turns"] if t["turnId"] == turn_id]
            assert captured["items"][-1]["text"] == chat_reply("hi")
            now = await status(host)
            m = now["metrics"]
            print(f"[figure] hold={hold}: committed {m['storeHeldBatchesCommitted']} held batches, "
                  f"gap {m['storeGapBatches']} batches / {m['storeGapEvents']} events")  # fmt: skip
            assert now["mode"] == "HYBRID_ACTIVE" and m["storeWritable"] and m["storeHeldBatches"] == 0
            if hold == "4KiB":
                assert m["storeGapBatches"] >= 1  # dropped, counted, and the thread reconciled from codex
            else:
                assert m["storeHeldBatchesCommitted"] >= 1 and m["storeGapBatches"] == 0
                # nothing held was lost: the host saw the turn complete, live, after the commit
                await host.wait_for(LIVE, lambda p: p.get("eventType") == "turn/completed"
                                    and p.get("turnId") == turn_id, timeout=30, since=since)  # fmt: skip
            assert any(t["toMode"] == "FAILURE" and "the disk is full" in t["reason"] for t in now["transitions"])

            assert (await post_logs(host, 1, 2, 3)).status == 200  # the exporter's retry is stored now
            await host.call("set_ingest_config", {"retentionDays": 7})
            assert (await host.call("get_ingest_config"))["retentionDays"] == 7
        with sqlite3.connect(data / "capture.sqlite3") as conn:  # the history the release gate reads
            recorded = conn.execute("SELECT to_mode, reason FROM mode_transitions ORDER BY id").fetchall()
        conn.close()
        assert any(mode == "FAILURE" and "the disk is full" in reason for mode, reason in recorded), recorded
        assert recorded[-1][0] == "HYBRID_ACTIVE"


async def _mode_is(host: Host, mode: str) -> bool:
    return (await status(host))["mode"] == mode


async def _metric(host: Host, name: str) -> Any:
    return (await status(host))["metrics"].get(name)


async def _quiet(host: Host) -> None:
    """Wait until codex stopped sending for a moment (the turn is over on its side)."""
    previous = -1
    with anyio.move_on_after(60):
        while True:
            m = (await status(host))["metrics"]
            now = (m.get("storeHeldBatches") or 0) + (m.get("storeGapBatches") or 0) * 1000
            if now == previous:
                return
            previous = now
            await anyio.sleep(1.5)


async def _completed(host: Host, thread_id: str, turn_id: str) -> dict[str, Any] | None:
    try:
        thread: dict[str, Any] = await host.call("get_captured_thread", {"threadId": thread_id})
    except HostError:
        return None
    for t in thread["turns"]:
        if t["turnId"] == turn_id and t["status"] == "completed" and t["items"] and t["items"][-1].get("text"):
            return thread
    return None


async def test_a_damaged_page_is_moved_aside_and_capture_continues(tmp_path: Path) -> None:
    """A garbage page in the closed store: found by quick_check after start, moved aside (kept, named),
    a fresh store opened; the mode went through FAILURE and the reasons say what happened."""
    async with spawn_bridge(tmp_path, config=BASELINE) as host:
        await host.call("bridge_info")
        assert (await post_logs(host, 1, 2)).status == 200
    store = tmp_path / "data" / "capture.sqlite3"
    with sqlite3.connect(store) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'otel_records'").fetchone()[0]
    conn.close()
    with open(store, "r+b") as fh:
        fh.seek((root - 1) * page_size)
        fh.write(bytes(range(256)) * (page_size // 256))

    async with spawn_bridge(tmp_path, config=BASELINE) as host:
        spawned = time.monotonic()
        info = await host.call("bridge_info", timeout=10)  # answered without waiting for the check
        answered = time.monotonic() - spawned
        assert info["protocolVersion"] == 1
        failure = await host.wait_for(TRANSITION, lambda p: p["toMode"] == "FAILURE", timeout=30)
        print(
            f"[figure] bridge_info after {answered:.2f} s; FAILURE (damaged) after {time.monotonic() - spawned:.2f} s"
        )
        assert "damaged" in failure["reason"] and str(tmp_path / "data") in failure["reason"], failure
        await host.wait_for(TRANSITION, lambda p: p["fromMode"] == "FAILURE", timeout=30)
        [moved] = sorted((tmp_path / "data").glob("capture.sqlite3.damaged-*[!lm]"))
        assert moved.stat().st_size > 0  # kept, not deleted
        now = await status(host)
        assert now["mode"] != "FAILURE"
        assert str(moved) in now["reasons"][-1] and "moved aside" in now["reasons"][-1]
        assert now["metrics"]["storeMovedAsideTo"] == str(moved)
        assert now["facts"]["storeNote"] == now["reasons"][-1]
        assert any(t["toMode"] == "FAILURE" for t in now["transitions"])
        # capture continues on the fresh store
        assert (await post_logs(host, 5, 6)).status == 200
        threads = await host.call("list_captured_threads")
        assert isinstance(threads, list)
    with sqlite3.connect(tmp_path / "data" / "telemetry.sqlite3") as telemetry:  # a file of its own: untouched
        assert telemetry.execute("SELECT count(*) FROM otel_records").fetchone()[0] == 4
    with sqlite3.connect(store) as fresh:
        assert fresh.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        modes = [r[0] for r in fresh.execute("SELECT to_mode FROM mode_transitions ORDER BY id")]
    assert "FAILURE" in modes  # the release gate will see it
