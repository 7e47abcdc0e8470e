"""The enrichment export over OTLP/HTTP into a receiver built on the official proto messages."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest

from bridge.capture.rows import Applied
from bridge.config.model import ExportConfig, IngestConfig, OtlpReceiverConfig
from bridge.enrichment import semconv as sc
from bridge.enrichment.enrichment_service import EnrichmentService
from bridge.enrichment.scheduler import QueueLimits, RetryPolicy
from bridge.enrichment.sender import PostResult, post_http
from tests.enrichment.support import OtlpSink, applied_batches

FAST = RetryPolicy(initial_s=0.05, cap_s=0.2)
SHELL_SPANS = 2  # invoke_agent + execute_tool
SHELL_LOGS = 8  # thread started, turn started, 5 items completed, turn completed


def config(
    endpoint: str | None = None, headers: dict[str, str] | None = None, receiver_port: int = 4318
) -> IngestConfig:
    return IngestConfig(
        export=ExportConfig(endpoint=endpoint, headers=headers or {}),
        otlp_receiver=OtlpReceiverConfig(port=receiver_port),
    )


@asynccontextmanager
async def running(service: EnrichmentService) -> AsyncIterator[EnrichmentService]:
    async with anyio.create_task_group() as tg:
        await service.start(tg)
        try:
            yield service
        finally:
            await service.close()
            tg.cancel_scope.cancel()


async def until(check: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    with anyio.move_on_after(timeout):
        while not check():
            await anyio.sleep(0.02)
        return
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def feed(service: EnrichmentService, batches: Sequence[list[Applied]]) -> None:
    for batch in batches:
        service.observe(batch)


def everything_arrived(sink: OtlpSink, spans: int = SHELL_SPANS, logs: int = SHELL_LOGS) -> Callable[[], bool]:
    return lambda: len(sink.spans) >= spans and len(sink.logs) >= logs


async def test_spans_and_logs_reach_the_receiver_with_their_attributes(tmp_path: Path) -> None:
    sink = OtlpSink().start()
    try:
        service = EnrichmentService(config(sink.endpoint, {"x-tenant": "t1"}), tmp_path / "q", env={}, retry=FAST)
        async with running(service):
            feed(service, list(applied_batches("shell", tmp_path / "c.db")))
            await until(everything_arrived(sink), "the shell turn")
            status = service.status()
            assert status["state"] == "on" and status["origin"] == "config" and status["endpoint"] == sink.endpoint
            assert status["sentBatches"] >= 1 and status["queueBatches"] == 0
    finally:
        sink.stop()
    assert {r.path for r in sink.requests} == {"/v1/traces", "/v1/logs"}
    assert all(r.headers["x-tenant"] == "t1" for r in sink.requests)
    [turn] = [s for s in sink.spans if s.name == "invoke_agent"]
    [tool] = [s for s in sink.spans if s.name == "execute_tool"]
    assert turn.resource[sc.SERVICE_NAME] == "capture-bridge"
    assert turn.attributes[sc.GEN_AI_OPERATION_NAME] == "invoke_agent"
    assert turn.attributes[sc.GEN_AI_CONVERSATION_ID].startswith("01a21f3b-c9b3")
    assert turn.attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == 28605
    assert turn.attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 50
    assert turn.attributes[sc.CAPTURE_SOURCE] == "app_server_stream"
    assert turn.attributes[sc.CAPTURE_DEDUP_DECISION] == "accepted"
    assert tool.attributes[sc.GEN_AI_OPERATION_NAME] == "execute_tool"
    assert tool.attributes[sc.GEN_AI_TOOL_CALL_ID].startswith("exec-")
    assert tool.attributes[sc.CAPTURE_TOOL_EXIT_CODE] == 0
    assert tool.parent_span_id == turn.span_id and tool.trace_id == turn.trace_id
    events = sorted(log.event_name for log in sink.logs)
    assert events.count(sc.EVENT_ITEM_COMPLETED) == 5
    item_logs = [log for log in sink.logs if log.event_name == sc.EVENT_ITEM_COMPLETED]
    assert {log.attributes[sc.CAPTURE_ITEM_TYPE] for log in item_logs} == {
        "userMessage", "reasoning", "commandExecution", "agentMessage",
    }  # fmt: skip
    assert all(log.attributes[sc.CAPTURE_DEDUP_DECISION] == "accepted" for log in sink.logs)
    assert all(log.trace_id == turn.trace_id for log in item_logs)


async def test_endpoint_down_during_a_turn_then_back_everything_arrives_once(tmp_path: Path) -> None:
    sink = OtlpSink().reserve()  # bound but not listening: connections are refused
    try:
        service = EnrichmentService(config(sink.endpoint), tmp_path / "q", env={}, retry=FAST)
        async with running(service):
            batches = list(applied_batches("shell", tmp_path / "c.db", batch=3))
            for batch in batches:
                service.observe(batch)  # returns at once: nothing here waits on the network
                await anyio.sleep(0)
            export = service.export
            assert export is not None and export.queue is not None
            await until(lambda: service.status()["failedAttempts"] >= 2, "failed attempts")
            await export.persist()
            assert export.queue.depth >= 2
            on_disk = [p for p in (tmp_path / "q").iterdir() if p.suffix == ".pb"]
            assert len(on_disk) == export.queue.depth
            assert service.status()["lastError"]
            assert sink.requests == []
            sink.start()  # the endpoint comes back on the same port
            await until(everything_arrived(sink), "the queued batches")
            await until(lambda: export.queue is not None and export.queue.depth == 0, "an empty queue")
            await anyio.sleep(0.3)  # room for a (wrong) second delivery
    finally:
        sink.stop()
    span_ids = [s.span_id for s in sink.spans]
    assert len(span_ids) == len(set(span_ids)) == SHELL_SPANS
    keys = [log.attributes[sc.CAPTURE_EVENT_KEY] for log in sink.logs]
    assert len(keys) == len(set(keys)) == SHELL_LOGS
    assert not [p for p in (tmp_path / "q").iterdir() if p.suffix == ".pb"]


async def test_a_hung_endpoint_never_holds_up_the_observer_or_the_queue(tmp_path: Path) -> None:
    release = threading.Event()
    started = threading.Event()
    calls: list[str] = []

    def hung_post(url: str, body: bytes, headers: Sequence[tuple[str, str]], timeout_s: float) -> PostResult:
        calls.append(url)
        started.set()
        release.wait(10)
        return PostResult(200)

    service = EnrichmentService(config("http://127.0.0.1:9"), tmp_path / "q", env={}, retry=FAST, post=hung_post)
    try:
        async with running(service):
            batches = list(applied_batches("shell", tmp_path / "c.db", batch=4))
            service.observe(batches[0])
            await until(started.is_set, "the first send")
            for batch in batches[1:]:
                service.observe(batch)  # the sender is stuck in a POST; this still returns at once
            export = service.export
            assert export is not None and export.queue is not None
            await export.persist()
            assert export.queue.depth >= 2  # later batches are safe on disk while the POST hangs
            assert len(calls) == 1
            release.set()
            await until(lambda: export.queue is not None and export.queue.depth == 0, "the queue to drain")
    finally:
        release.set()


async def test_a_full_queue_drops_the_oldest_batches_counts_and_logs_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bridge.enrichment.export")
    sink = OtlpSink().reserve()
    try:
        service = EnrichmentService(config(sink.endpoint), tmp_path / "q", env={}, retry=FAST,
                                    limits=QueueLimits(max_batches=3))  # fmt: skip
        async with running(service):
            export = service.export
            assert export is not None and export.queue is not None
            for batch in applied_batches("shell", tmp_path / "c.db", batch=1):
                service.observe(batch)
                await export.persist()
            status = service.status()
            assert status["queueBatches"] == 3
            assert status["droppedBatches"] >= 3
            assert len([p for p in (tmp_path / "q").iterdir() if p.suffix == ".pb"]) == 3
            assert any("export queue full" in r.getMessage() and "dropped" in r.getMessage() for r in caplog.records)
            sink.start()
            await until(lambda: export.queue is not None and export.queue.depth == 0, "the queue to drain")
    finally:
        sink.stop()
    assert len(sink.requests) == 3
    names = [log.event_name for log in sink.logs]
    assert sc.EVENT_TURN_COMPLETED in names  # the newest survived
    assert sc.EVENT_THREAD_STARTED not in names  # the oldest were dropped


async def test_the_bridges_own_receiver_is_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="bridge.enrichment.export")
    own = "http://127.0.0.1:41234"
    service = EnrichmentService(config("http://localhost:41234"), tmp_path / "q", env={},
                                receiver_endpoint=lambda: own)  # fmt: skip
    async with running(service):
        feed(service, list(applied_batches("chat", tmp_path / "c.db")))
        status = service.status()
    assert status["state"] == "refused"
    assert "own OTLP receiver" in status["reason"]
    assert service.export is None and not (tmp_path / "q").exists()
    assert any("own OTLP receiver" in r.getMessage() for r in caplog.records)

    # the configured receiver port counts too, as does the env fallback
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}
    service = EnrichmentService(config(None, receiver_port=4318), tmp_path / "q2", env=env)
    async with running(service):
        assert service.status()["state"] == "refused"


async def test_a_receiver_that_moves_onto_the_export_port_stops_the_sending(tmp_path: Path) -> None:
    sink = OtlpSink().start()
    own: list[str | None] = [None]
    try:
        service = EnrichmentService(config(sink.endpoint), tmp_path / "q", env={}, retry=FAST,
                                    receiver_endpoint=lambda: own[0])  # fmt: skip
        async with running(service):
            batches = list(applied_batches("shell", tmp_path / "c.db", batch=100))
            feed(service, batches)
            await until(everything_arrived(sink), "the first turn")
            sent = len(sink.requests)
            own[0] = sink.endpoint  # now the bridge's own receiver listens there
            feed(service, list(applied_batches("chat", tmp_path / "c2.db")))
            await until(lambda: service.status()["state"] == "refused", "the refusal")
            await anyio.sleep(0.3)
            assert len(sink.requests) == sent
            assert service.status()["queueBatches"] >= 1  # kept, not sent
    finally:
        sink.stop()


async def test_env_fallback_when_config_has_no_endpoint(tmp_path: Path) -> None:
    sink = OtlpSink().start()
    try:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint, "OTEL_EXPORTER_OTLP_HEADERS": "x-api-key=abc"}
        service = EnrichmentService(config(None), tmp_path / "q", env=env, retry=FAST)
        async with running(service):
            assert service.status()["origin"] == "env"
            feed(service, list(applied_batches("chat", tmp_path / "c.db")))
            await until(everything_arrived(sink, spans=1, logs=1), "the chat turn")
    finally:
        sink.stop()
    assert all(r.headers["x-api-key"] == "abc" for r in sink.requests)
    assert [s.name for s in sink.spans] == ["invoke_agent"]


async def test_off_when_neither_is_set_and_on_after_a_config_change(tmp_path: Path) -> None:
    sink = OtlpSink().start()
    try:
        service = EnrichmentService(config(None), tmp_path / "q", env={}, retry=FAST)
        async with running(service):
            feed(service, list(applied_batches("chat", tmp_path / "a.db")))
            status = service.status()
            assert status["state"] == "off" and status["endpoint"] is None
            assert service.export is None and not (tmp_path / "q").exists()
            await service.apply_config(config(sink.endpoint))
            assert service.status()["state"] == "on"
            feed(service, list(applied_batches("shell", tmp_path / "b.db")))
            await until(everything_arrived(sink), "the shell turn")
            await service.apply_config(config(None))
            assert service.status()["state"] == "off"
    finally:
        sink.stop()
    assert len(sink.spans) == SHELL_SPANS  # the chat turn ran while export was off: never exported


async def test_unsent_batches_survive_a_restart_and_are_sent_once(tmp_path: Path) -> None:
    sink = OtlpSink().reserve()
    try:
        first = EnrichmentService(config(sink.endpoint), tmp_path / "q", env={}, retry=FAST)
        async with running(first):
            feed(first, list(applied_batches("shell", tmp_path / "c.db")))
        # close() put the outbox on disk
        assert len([p for p in (tmp_path / "q").iterdir() if p.suffix == ".pb"]) >= 2
        sink.start()
        second = EnrichmentService(config(sink.endpoint), tmp_path / "q", env={}, retry=FAST)
        async with running(second):
            await until(everything_arrived(sink), "the batches of the previous run")
            await anyio.sleep(0.3)
    finally:
        sink.stop()
    assert len({s.span_id for s in sink.spans}) == len(sink.spans) == SHELL_SPANS
    assert len(sink.logs) == SHELL_LOGS


async def test_retryable_and_permanent_http_errors(tmp_path: Path) -> None:
    answers = iter([503, 503])
    sink = OtlpSink(answer=lambda path: next(answers, 200)).start()
    try:
        service = EnrichmentService(config(sink.endpoint), tmp_path / "q", env={}, retry=FAST)
        async with running(service):
            feed(service, list(applied_batches("chat", tmp_path / "c.db")))
            await until(everything_arrived(sink, spans=1, logs=1), "delivery after two 503s")
            await until(lambda: service.status()["queueBatches"] == 0, "an empty queue")
            assert service.status()["failedAttempts"] == 2
            assert service.status()["rejectedBatches"] == 0
            sink.answer = lambda path: 400
            feed(service, list(applied_batches("shell", tmp_path / "d.db")))
            await until(lambda: service.status()["rejectedBatches"] >= 1, "a rejection")
            await until(lambda: service.status()["queueBatches"] == 0, "the rejected batches to go")
            assert "HTTP 400" in service.status()["lastError"]
    finally:
        sink.stop()


def test_post_http_reports_a_refused_connection_without_raising() -> None:
    sink = OtlpSink().reserve()
    try:
        result = post_http(f"{sink.endpoint}/v1/traces", b"", (), 2.0)
    finally:
        sink.stop()
    assert result.status is None and not result.ok and result.error


async def test_an_unusable_queue_dir_turns_export_off_without_failing_the_start(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the queue dir should be")
    service = EnrichmentService(config("http://127.0.0.1:9"), blocker / "q", env={})
    async with running(service):
        feed(service, list(applied_batches("chat", tmp_path / "c.db")))
        status = service.status()
    assert status["state"] == "error" and "cannot be used" in status["reason"]
    assert service.export is None
