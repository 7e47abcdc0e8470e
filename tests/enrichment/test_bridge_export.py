"""End to end: a spawned bridge driving the real codex exports its turns over OTLP/HTTP.

The peer tests run the real codex against the project's fake model inside the
loopback-only fence (``make test`` / ``python -m bridge.peers.fence -- pytest``).
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import anyio
import pytest

from bridge.drill.fake_model import FakeModel
from bridge.enrichment import semconv as sc
from tests.enrichment.support import OtlpSink
from tests.stream.support import run_turn, streaming_bridge
from tests.support.host import spawn_bridge


async def until(check: object, what: str, timeout: float = 30.0) -> None:
    assert callable(check)
    with anyio.move_on_after(timeout):
        while not check():
            await anyio.sleep(0.05)
        return
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stderr_lines(tmp_path: Path) -> list[dict[str, object]]:
    out = []
    for path in sorted(tmp_path.glob("bridge-stderr-*.log")):
        for line in path.read_text(errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


async def test_the_own_receiver_is_refused_by_a_running_bridge(tmp_path: Path) -> None:
    port = free_port()
    config = {"otlpReceiver": {"port": port}, "export": {"endpoint": f"http://localhost:{port}"}}
    async with spawn_bridge(tmp_path, config=config) as host:
        await host.call("bridge_info")
        await until(
            lambda: any("own OTLP receiver" in str(r.get("msg", r)) for r in stderr_lines(tmp_path)),
            "the refusal in the log",
        )
    assert not (tmp_path / "data" / "export-queue").exists()


@pytest.mark.peer
async def test_a_real_turn_arrives_as_spans_and_logs(tmp_path: Path, fake_model: FakeModel) -> None:
    sink = OtlpSink().start()
    try:
        async with streaming_bridge(tmp_path, fake_model.base_url, export={"endpoint": sink.endpoint}) as (
            host,
            thread_id,
        ):
            turn = await run_turn(host, thread_id, "[[scenario:chat]] hello exporter")
            turn_id = turn["turn"]["id"]
            await until(lambda: any(s.name == "invoke_agent" for s in sink.spans), "the turn span")
            await until(lambda: any(log.event_name == sc.EVENT_TURN_COMPLETED for log in sink.logs), "the logs")
    finally:
        sink.stop()
    [span] = [s for s in sink.spans if s.name == "invoke_agent"]
    assert span.attributes[sc.GEN_AI_CONVERSATION_ID] == thread_id
    assert span.attributes[sc.CAPTURE_TURN_ID] == turn_id
    assert span.attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] > 0
    assert span.attributes[sc.CAPTURE_SOURCE] == "app_server_stream"
    assert span.resource[sc.SERVICE_NAME] == "capture-bridge"
    items = [log for log in sink.logs if log.event_name == sc.EVENT_ITEM_COMPLETED]
    assert {log.attributes[sc.CAPTURE_ITEM_TYPE] for log in items} >= {"userMessage", "agentMessage"}


@pytest.mark.peer
async def test_endpoint_down_during_a_real_turn_then_back(tmp_path: Path, fake_model: FakeModel) -> None:
    sink = OtlpSink().reserve()  # connections refused until it starts
    queue_dir = tmp_path / "data" / "export-queue"
    try:
        async with streaming_bridge(tmp_path, fake_model.base_url, export={"endpoint": sink.endpoint}) as (
            host,
            thread_id,
        ):
            await run_turn(host, thread_id, "[[scenario:shell:echo exported]] run it")
            await until(lambda: len(list(queue_dir.glob("*.pb"))) >= 2, "batches waiting on disk")
            assert sink.requests == []
            sink.start()
            await until(lambda: not list(queue_dir.glob("*.pb")), "the queue to drain", timeout=60)
            await until(lambda: any(s.name == "invoke_agent" for s in sink.spans), "the turn span")
            await anyio.sleep(0.5)
    finally:
        sink.stop()
    span_ids = [s.span_id for s in sink.spans]
    assert len(span_ids) == len(set(span_ids))
    assert {s.name for s in sink.spans} == {"invoke_agent", "execute_tool"}
    keys = [log.attributes[sc.CAPTURE_EVENT_KEY] for log in sink.logs]
    assert len(keys) == len(set(keys))
    assert all(log.attributes[sc.GEN_AI_CONVERSATION_ID] == thread_id for log in sink.logs)
