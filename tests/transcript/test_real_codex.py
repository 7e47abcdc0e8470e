"""A real codex turn recorded through the bridge, replayed without codex: the same captured thread (fenced)."""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import pytest

from bridge.peers import fence
from bridge.transcript.compare import normalise
from bridge.transcript.replay import replay
from bridge.transcript.report import render_json
from tests.transcript.codex_fixtures import API_KEY, chat, recording_bridge
from tests.transcript.support import contains

pytestmark = pytest.mark.peer


async def test_replay_of_a_real_turn_equals_the_live_capture(tmp_path: Path) -> None:
    if not fence.isolated():
        pytest.fail(
            "not inside the loopback-only fence: run real-peer tests as "
            "`.venv/bin/python -m bridge.peers.fence -- .venv/bin/pytest tests/transcript` "
            f"(interfaces up: {fence.interfaces()})"
        )
    transcript = tmp_path / "live.jsonl"
    async with recording_bridge(tmp_path / "rec", transcript) as session:
        live = normalise(await chat(session))
    assert API_KEY not in transcript.read_text()
    result = await replay(transcript)
    assert result.complete, result.problems
    if result.report["threads"] != live:  # say exactly what differs
        got, want = json.dumps(result.report["threads"], indent=1).splitlines(), json.dumps(live, indent=1).splitlines()
        raise AssertionError("\n".join(difflib.unified_diff(want, got, "live", "replay", lineterm="", n=2)))
    [thread] = live
    assert [i["type"] for i in thread["turns"][0]["items"]] == ["userMessage", "reasoning", "agentMessage"]
    assert API_KEY not in render_json(result.report)
    contains(json.loads(json.dumps(live)), result.report["threads"])
