"""The recorded OTLP payloads of real codex and Claude Code are accepted and stored by the receiver."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.receiver.support import post, running_receiver
from tests.transcript.otlp_fixtures import PROMPT
from tests.transcript.support import REPO

OTLP = REPO / "fixtures" / "otlp"
DIRS = ["codex-json", "codex-binary", "claude-http-json", "claude-http-protobuf"]
PROMPT_EVENT = {"codex": "codex.user_prompt", "claude": "claude_code.user_prompt"}


def test_the_otlp_corpus_is_there() -> None:
    assert (OTLP / "README.md").is_file()
    for name in DIRS:
        files = sorted((OTLP / name).iterdir())
        assert files, name
        assert {f.name.split("-", 1)[1].split(".")[0] for f in files} == {"logs", "traces", "metrics"}, name


@pytest.mark.parametrize("name", DIRS)
async def test_every_payload_is_accepted_and_stored(tmp_path: Path, name: str) -> None:
    async with running_receiver(tmp_path) as rx:
        for path in sorted((OTLP / name).iterdir()):
            signal = path.stem.split("-", 1)[1]
            content_type = "application/json" if path.suffix == ".json" else "application/x-protobuf"
            reply = await post(rx.endpoint, f"/v1/{signal}", path.read_bytes(), key=rx.key, content_type=content_type)
            assert reply.status == 200, (path, reply)
        assert rx.count("signal = 'span'") > 0 and rx.count("signal = 'metric'") > 0
        [prompt] = [r for r in rx.rows("signal = 'log'") if r["name"] == PROMPT_EVENT[name.split("-")[0]]]
        assert json.loads(prompt["attributes"])["prompt"] == PROMPT
