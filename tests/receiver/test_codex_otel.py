"""The real codex (``codex exec``, fenced, against the project's fake model) feeds the receiver
through its own OTLP exporters, pointed there by the bridge's ``-c`` overrides; what it sent is
in the store once, and a redelivery of all of it adds nothing."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import anyio
import pytest

from bridge.drill.fake_model import FakeModel
from bridge.peers import fence
from bridge.peers.install import codex_native_binary
from bridge.receiver.codex_overrides import codex_otel_overrides
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

PROMPT = "Say hi to the OTEL receiver test."

pytestmark = pytest.mark.peer


def provider_args(base_url: str) -> list[str]:
    return [
        "-c", "model_provider=local",
        "-c", 'model_providers.local.name="local fake"',
        "-c", f'model_providers.local.base_url="{base_url}"',
        "-c", 'model_providers.local.wire_api="responses"',
        "-c", "model_providers.local.request_max_retries=1",
        "-c", "model_providers.local.stream_max_retries=1",
    ]  # fmt: skip


@pytest.mark.parametrize("protocol", ["json", "binary"])
async def test_codex_exec_telemetry_is_stored_once(tmp_path: Path, protocol: str) -> None:
    require_fence()
    fake = FakeModel()
    async with running_receiver(tmp_path) as rx, anyio.create_task_group() as tg:
        await tg.start(fake.serve)
        proxy = RecordingProxy(_host_port(rx.endpoint))
        await tg.start(proxy.serve)
        home = tmp_path / "home"
        env = fence.peer_env(dict(os.environ), home)
        argv = [
            str(codex_native_binary()), *fence.CODEX_SAFE_ARGS,
            *codex_otel_overrides(proxy.endpoint, rx.key, protocol=protocol),  # type: ignore[arg-type]
            *provider_args(fake.base_url), "exec", "--skip-git-repo-check", PROMPT,
        ]  # fmt: skip
        work = tmp_path / "work"
        work.mkdir()
        finished = await run_peer(argv, env, work)
        assert finished.returncode == 0, finished.stderr[-3000:]
        assert fake.responses(), "codex never reached the fake model"

        await wait_until(
            lambda: rx.service.counters.accepted >= len(proxy.requests()), 15, "the receiver to answer all"
        )
        captured = proxy.requests()
        assert rx.service.counters.rejected == 0
        sent = sent_by(captured)
        if protocol == "json":
            assert sent.json_requests > 0 and sent.protobuf_requests == 0
        else:
            assert sent.protobuf_requests > 0 and sent.json_requests == 0
        assert sent.logs and sent.spans and sent.points

        # every log record codex sent is stored once, under its conversation
        log_rows = rx.rows("signal = 'log'")
        assert len(log_rows) == len(sent.logs)
        for attrs, record in sent.logs:
            if "conversation.id" in attrs:
                matches = [
                    r for r in log_rows
                    if r["time_ns"] == (record.time_unix_nano or record.observed_time_unix_nano)
                    and r["name"] == attrs["event.name"]
                    and r["conversation_id"] == attrs["conversation.id"]
                ]  # fmt: skip
                assert len(matches) == 1, (attrs, matches)
        [prompt] = [r for r in log_rows if r["name"] == "codex.user_prompt"]
        assert json.loads(prompt["attributes"])["prompt"] == PROMPT
        [answer] = [r for r in log_rows if r["name"] == "codex.agent_response"]
        assert answer["conversation_id"] == prompt["conversation_id"] and answer["turn_id"] and answer["item_id"]

        # every span once; every metric point once
        span_rows = rx.rows("signal = 'span'")
        assert {(r["trace_id"], r["span_id"]) for r in span_rows} == {(t, s) for t, s, _ in sent.spans}
        assert len(span_rows) == len(sent.spans)
        assert Counter(r["name"] for r in rx.rows("signal = 'metric'")) == Counter(sent.points)

        # at-least-once: everything delivered again is recognised, nothing is stored twice
        total = rx.count()
        duplicates = rx.service.counters.records_duplicate
        assert set(await replay(rx, captured)) == {200}
        assert rx.count() == total
        assert rx.service.counters.records_duplicate - duplicates == total
        tg.cancel_scope.cancel()
