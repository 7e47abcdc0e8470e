"""The real Claude Code (``claude -p``, fenced, against the project's fake Messages API) feeds
the receiver through its own OTLP exporters; what it sent is in the store once, and a
redelivery of all of it adds nothing."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import anyio
import pytest

from bridge.peers import fence
from tests.receiver.support import (
    RecordingProxy,
    _host_port,
    replay,
    require_fence,
    run_peer,
    running_receiver,
    sent_by,
    wait_until,
)
from tests.support.claude import claude_binary, claude_env
from tests.support.fake_anthropic import FakeAnthropic, reply_text

PROMPT = "Say hi to the OTEL receiver test."

pytestmark = pytest.mark.peer


@pytest.mark.parametrize("protocol", ["http/json", "http/protobuf"])
async def test_claude_print_telemetry_is_stored_once(tmp_path: Path, protocol: str) -> None:
    require_fence()
    fake = FakeAnthropic()
    async with running_receiver(tmp_path) as rx, anyio.create_task_group() as tg:
        await tg.start(fake.serve)
        proxy = RecordingProxy(_host_port(rx.endpoint))
        await tg.start(proxy.serve)
        env = claude_env(
            fence.peer_env(dict(os.environ), tmp_path / "home"),
            anthropic_base_url=fake.base_url,
            otlp_endpoint=proxy.endpoint,
            otlp_headers=f"x-capture-bridge-key={rx.key}",
            protocol=protocol,
        )
        work = tmp_path / "work"
        work.mkdir()
        finished = await run_peer([str(claude_binary()), "-p", PROMPT], env, work)
        assert finished.returncode == 0, finished.stderr[-3000:]
        assert reply_text(PROMPT) in finished.stdout
        assert fake.messages(), "Claude Code never reached the fake Messages API"

        await wait_until(
            lambda: rx.service.counters.accepted >= len(proxy.requests()), 15, "the receiver to answer all"
        )
        captured = proxy.requests()
        assert rx.service.counters.rejected == 0
        sent = sent_by(captured)
        if protocol == "http/json":
            assert sent.json_requests > 0 and sent.protobuf_requests == 0
        else:
            assert sent.protobuf_requests > 0 and sent.json_requests == 0

        # every event once, keyed by (session.id, event.sequence)
        log_rows = rx.rows("signal = 'log'")
        expected = sorted(f"claude:{a['session.id']}:{a['event.sequence']}" for a, _ in sent.logs)
        assert sorted(r["dedup_key"] for r in log_rows) == expected
        names = {r["name"] for r in log_rows}
        assert {"claude_code.user_prompt", "claude_code.api_request", "claude_code.assistant_response"} <= names
        [prompt] = [r for r in log_rows if r["name"] == "claude_code.user_prompt"]
        assert json.loads(prompt["attributes"])["prompt"] == PROMPT
        [answer] = [r for r in log_rows if r["name"] == "claude_code.assistant_response"]
        assert json.loads(answer["attributes"])["response"] == reply_text(PROMPT)
        assert answer["conversation_id"] == prompt["conversation_id"] and answer["turn_id"] == prompt["turn_id"]

        span_rows = rx.rows("signal = 'span'")
        assert {(r["trace_id"], r["span_id"]) for r in span_rows} == {(t, s) for t, s, _ in sent.spans}
        assert len(span_rows) == len(sent.spans)
        assert "claude_code.interaction" in {r["name"] for r in span_rows}
        assert Counter(r["name"] for r in rx.rows("signal = 'metric'")) == Counter(sent.points)

        total = rx.count()
        duplicates = rx.service.counters.records_duplicate
        assert set(await replay(rx, captured)) == {200}
        assert rx.count() == total
        assert rx.service.counters.records_duplicate - duplicates == total
        tg.cancel_scope.cancel()
