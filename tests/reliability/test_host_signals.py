"""SIGTERM and SIGINT take the same bounded stop as ``shutdown``.

Exit 0 within the budget, no traceback, codex stopped and reaped, the store's
WAL checkpointed and ``bridge_stop`` recorded in the mode history. Mid-turn
cases drive the real codex app-server against the project's fake model.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from bridge.client.host import slow_start
from tests.peers.conftest import fake_model  # noqa: F401  (the fake Responses API fixture)
from tests.stream.support import LIVE, streaming_bridge
from tests.support.host import Host, spawn_bridge

EXIT_DEADLINE = 9.0  # the stop takes at most 3 s; asserted with 3x slack
SIGNALS = [signal.SIGTERM, signal.SIGINT]
TRANSITION = "capture-reliability-transition"


def last_event(data_dir: Path) -> str:
    with sqlite3.connect(f"file:{data_dir / 'capture.sqlite3'}?mode=ro", uri=True) as conn:
        row = conn.execute("SELECT kind FROM reliability_events ORDER BY id DESC LIMIT 1").fetchone()
    return str(row[0])


def wal_bytes(data_dir: Path) -> int:
    wal = data_dir / "capture.sqlite3-wal"
    return wal.stat().st_size if wal.exists() else 0


def running(pid: int) -> bool:
    """True while ``pid`` is a live process (a zombie or no process at all is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


async def signal_and_exit(host: Host, signum: signal.Signals) -> float:
    os.kill(host.pid, signum)
    started = time.monotonic()
    assert await host.wait_exit(EXIT_DEADLINE) == 0, host.stderr()[-3000:]
    return time.monotonic() - started


def assert_clean_stop(host: Host, signum: signal.Signals) -> None:
    log = host.stderr()
    assert "Traceback" not in log
    assert f"{signum.name} received: stopping" in log
    assert last_event(host.data_dir) == "bridge_stop"
    assert wal_bytes(host.data_dir) == 0, "the WAL is checkpointed into the store on the way out"


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: s.name)
async def test_signal_when_idle_stops_like_shutdown(tmp_path: Path, signum: signal.Signals) -> None:
    config: dict[str, Any] = {"autoIngestEnabled": True, "otlpReceiver": {"port": 0}}
    async with spawn_bridge(tmp_path, config=config) as host:
        await host.call("bridge_info")
        await host.wait_for(TRANSITION, timeout=30)
        took = await signal_and_exit(host, signum)
    assert took < EXIT_DEADLINE
    assert_clean_stop(host, signum)


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: s.name)
async def test_signal_during_a_slow_start_answers_what_was_asked(tmp_path: Path, signum: signal.Signals) -> None:
    async with spawn_bridge(tmp_path, prelude=slow_start(60)) as host:
        await host.call("bridge_info")  # the loop runs; the subsystems are still starting
        for i in range(5):
            await host.send({"id": 100 + i, "method": "get_ingest_config"})
        await anyio.sleep(0.2)
        took = await signal_and_exit(host, signum)
    assert took < EXIT_DEADLINE
    for i in range(5):
        error = host.responses[100 + i]["error"]
        assert error["code"] == -32002 and error["data"]["kind"] == "shutting_down"
    assert "Traceback" not in host.stderr()


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: s.name)
async def test_signal_mid_turn_stops_codex_and_keeps_what_was_captured(
    tmp_path: Path,
    fake_model: Any,  # noqa: F811
    signum: signal.Signals,
) -> None:
    data_dir = tmp_path / "data"
    async with streaming_bridge(tmp_path, fake_model.base_url) as (host, thread_id):
        codex_pid = (await host.call("get_codex_app_server_status"))["pid"]
        assert codex_pid and running(codex_pid)
        since = len(host.notifications)
        # Each event of the model's answer comes 1.5 s apart: the turn is long under way when the signal comes.
        turn = await host.call("codex_app_server_turn_start", {"threadId": thread_id, "text": "[[delay:1500]] hi"})
        turn_id = turn["turn"]["id"]
        await host.wait_for(LIVE, lambda p: p.get("eventType") == "turn/started", timeout=60, since=since)
        took = await signal_and_exit(host, signum)
        assert not any(
            p.get("eventType") == "turn/completed" and p.get("turnId") == turn_id for m, p in host.notifications
        ), "the signal came mid-turn"
    print(f"{signum.name} mid-turn: exit 0 {took:.2f} s after the signal")
    assert took < EXIT_DEADLINE
    assert_clean_stop(host, signum)
    with anyio.fail_after(EXIT_DEADLINE):
        while running(codex_pid):
            await anyio.sleep(0.05)
    # What was captured before the signal is in the store for the next run.
    async with spawn_bridge(tmp_path, data_dir=data_dir) as after:
        thread = await after.call("get_captured_thread", {"threadId": thread_id})
    assert turn_id in [t["turnId"] for t in thread["turns"]]
