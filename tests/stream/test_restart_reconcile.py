"""After codex dies mid-turn and is restarted, open threads are reconciled from its own record."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import anyio
import pytest

from bridge.drill.fake_model import FakeModel
from tests.stream.support import LIVE, run_turn, streaming_bridge

pytestmark = pytest.mark.peer


async def test_a_killed_sidecar_is_reconciled_without_duplicates(tmp_path: Path, fake_model: FakeModel) -> None:
    async with streaming_bridge(tmp_path, fake_model.base_url) as (host, thread_id):
        await run_turn(host, thread_id, "[[scenario:chat]] the first turn")
        before = await host.call("get_captured_thread", {"threadId": thread_id})
        status = await host.call("get_codex_app_server_status")
        old_pid = status["pid"]
        since = len(host.notifications)
        second = await host.call(
            "codex_app_server_turn_start", {"threadId": thread_id, "text": "[[delay:8000]] a slow second turn"}
        )
        await host.wait_for(LIVE, lambda p: p.get("eventType") == "turn/started", since=since, timeout=30)
        os.kill(old_pid, signal.SIGKILL)
        await host.wait_for(
            "codex-app-server-status",
            lambda p: p["pid"] not in (None, old_pid) and p["initialized"] and p["authState"] == "authenticated",
            since=since,
            timeout=60,
        )
        # the reconciliation runs right after the automatic re-handshake
        with anyio.fail_after(60):
            while True:
                log = await host.call("get_codex_stream_dedupe_log", {"limit": 200})
                if any(d["decision"] == "duplicate" and d["key"].startswith("item|" + thread_id) for d in log):
                    break
                await anyio.sleep(0.2)
        after = await host.call("get_captured_thread", {"threadId": thread_id})
    first_before = before["turns"][0]
    first_after = next(t for t in after["turns"] if t["turnId"] == first_before["turnId"])
    assert [i["itemId"] for i in first_after["items"]] == [i["itemId"] for i in first_before["items"]]
    assert first_after["status"] == "completed"
    ids = [i["itemId"] for t in after["turns"] for i in t["items"]]
    assert len(ids) == len(set(ids)), "no item is stored twice"
    interrupted = next(t for t in after["turns"] if t["turnId"] == second["turn"]["id"])
    assert interrupted["status"] in ("incomplete", "interrupted", "failed")
