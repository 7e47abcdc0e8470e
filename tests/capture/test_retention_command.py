"""``run_capture_retention`` through a spawned bridge: it applies ``retentionDays`` now, with progress.

docs/protocol.md §3.5 and §1.1: content captured before the cutoff goes, newer
content stays, and a ``workDoneToken`` gets begin, reports and end before the
answer.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bridge import errors
from bridge.capture.store import CaptureStore
from bridge.clock import parse_iso_ms
from bridge.config.paths import DataDir
from bridge.store.db import Database
from tests.capture.test_store import events
from tests.support.host import Host, spawn_bridge

CONFIG = {"otlpReceiver": {"enabled": False}, "retentionDays": 30}
DAY_MS = 86_400_000


def _seed(data: Path) -> tuple[str, str]:
    """One thread captured 10 days ago, one captured now: (older id, new id).

    Both are inside the 30-day window the bridge starts with (its own pass at
    start keeps them); the tests then shorten the window to 5 days, as a user
    would before asking for the retention to apply now.
    """
    data.mkdir(parents=True, exist_ok=True)
    db = Database(DataDir(data).database)
    store = CaptureStore(db)
    old, new = events("chat"), events("shell")
    now = int(time.time() * 1000)
    store.apply(old, at_ms=now - 10 * DAY_MS)
    store.apply(new, at_ms=now)
    db.close()
    assert old[0].thread_id != new[0].thread_id
    return old[0].thread_id, new[0].thread_id


def _progress(host: Host, token: Any) -> list[dict[str, Any]]:
    return [
        f["params"]["value"]
        for f in host.frames
        if isinstance(f, dict) and f.get("method") == "$/progress" and f["params"]["token"] == token
    ]


async def test_retention_now_removes_only_content_older_than_the_window(tmp_path: Path) -> None:
    old, new = _seed(tmp_path / "data")
    async with spawn_bridge(tmp_path, config=CONFIG) as host:
        before = {t["threadId"] for t in await host.call("list_captured_threads")}
        await host.call("set_ingest_config", {"retentionDays": 5})
        ran = await host.call("run_capture_retention", {"workDoneToken": "ret"})
        after = {t["threadId"] for t in await host.call("list_captured_threads")}
    assert before == {old, new}
    assert after == {new}
    assert ran["removedThreads"] == 1
    assert ran["retentionDays"] == 5
    cutoff = parse_iso_ms(ran["cutoffIso"])
    assert cutoff is not None and abs(cutoff - (time.time() * 1000 - 5 * DAY_MS)) < 60_000
    values = _progress(host, "ret")
    assert values[0]["kind"] == "begin" and values[-1]["kind"] == "end"
    assert {v["kind"] for v in values[1:-1]} == {"report"} and len(values) >= 4
    percents = [v["percentage"] for v in values if v.get("percentage") is not None]
    assert percents == sorted(percents)
    assert values[-1]["message"] == "captured threads removed: 1"
    # Past the deletion's start a cancel no longer stops it, and the progress says so.
    assert any(v.get("cancellable") is False for v in values[1:-1])


async def test_without_a_token_no_progress_is_sent_and_a_second_run_removes_nothing(tmp_path: Path) -> None:
    _seed(tmp_path / "data")
    async with spawn_bridge(tmp_path, config=CONFIG) as host:
        await host.call("set_ingest_config", {"retentionDays": 5})
        first = await host.call("run_capture_retention")
        second = await host.call("run_capture_retention", {})
    assert (first["removedThreads"], second["removedThreads"]) == (1, 0)
    assert not [f for f in host.frames if isinstance(f, dict) and f.get("method") == "$/progress"]


async def test_a_token_that_is_neither_string_nor_integer_is_refused_by_name(tmp_path: Path) -> None:
    async with spawn_bridge(tmp_path, config=CONFIG) as host:
        bad = {"workDoneToken": [1]}
        await host.send({"jsonrpc": "2.0", "id": 5, "method": "run_capture_retention", "params": bad})
        answer = await host.wait_response(5)
    assert answer["error"]["code"] == errors.INVALID_PARAMS
    assert "workDoneToken" in answer["error"]["message"]
