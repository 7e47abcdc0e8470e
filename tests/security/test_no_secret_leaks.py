"""Secrets never reach what the bridge writes: stdout frames, logs, the store, transcripts.

A real codex turn (fenced) whose prompt and answer carry an API-key-shaped
secret and a bearer token, after a login with a known API key; then every
byte the bridge produced is searched for them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bridge.drill.fake_model import FakeModel
from tests.peers.conftest import API_KEY
from tests.stream.support import run_turn, streaming_bridge

pytestmark = pytest.mark.peer

PROMPT_SECRET = "sk-promptsecret-1234567890abcdef"
BEARER = "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJsZWFrIn0.c2lnbmF0dXJl"


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


async def test_no_secret_reaches_frames_logs_store_or_transcript(tmp_path: Path, fake_model: FakeModel) -> None:
    transcript = tmp_path / "transcript.jsonl"
    async with streaming_bridge(tmp_path, fake_model.base_url, transcript={"path": str(transcript)}) as (
        host,
        thread_id,
    ):
        # the fake model echoes the prompt, so the secrets come back in the agent's answer too
        await run_turn(host, thread_id, f"[[scenario:chat]] my key is {PROMPT_SECRET} and {BEARER}")
        thread = await host.call("get_captured_thread", {"threadId": thread_id})
        await host.call("shutdown")
        await host.wait_exit(9)
    answer = thread["turns"][0]["items"][-1]["text"]
    assert "[REDACTED]" in answer  # the echo was captured, masked
    wire = json.dumps(host.frames)
    written = {path: path.read_bytes() for path in files_under(host.data_dir)}
    written[transcript] = transcript.read_bytes()
    written[host.stderr_path] = host.stderr_path.read_bytes()
    assert transcript.stat().st_size > 0
    for secret in (API_KEY, PROMPT_SECRET, BEARER.split()[1]):
        assert secret not in wire, f"{secret[:12]}… reached a stdout frame"
        for path, data in written.items():
            assert secret.encode() not in data, f"{secret[:12]}… reached {path}"
