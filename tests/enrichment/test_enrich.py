"""Applied batches of the real recorded codex streams → spans and log records (no network)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import opentelemetry._logs as otel_logs
import opentelemetry.trace as otel_trace
import pytest

from bridge.capture.events import OTEL
from bridge.capture.rows import Applied
from bridge.capture.store import CaptureStore
from bridge.enrichment import semconv as sc
from bridge.enrichment.enrich import MAX_CONTENT_CHARS, Enricher
from bridge.enrichment.outbox import Outbox
from bridge.enrichment.providers import build_providers, item_span_id, trace_id_for, turn_span_id
from bridge.store.db import Database
from tests.enrichment.support import applied, applied_batches, stream_events


def run(batches: list[list[Applied]]) -> tuple[list[Any], list[Any]]:
    outbox = Outbox()
    enricher = Enricher(build_providers(outbox))
    for batch in batches:
        enricher.observe(batch)
    taken = outbox.take()
    return taken["traces"], taken["logs"]


def by_name(spans: list[Any], name: str) -> list[Any]:
    return [s for s in spans if s.name == name]


def last_usage(events: list[Applied]) -> dict[str, int]:
    usages = [a.event.usage for a in events if a.event.kind == "usage"]
    assert usages and usages[-1] is not None
    total: dict[str, int] = usages[-1]["total"]
    return total


def test_shell_turn_becomes_an_invoke_agent_span_with_a_tool_child(tmp_path: Path) -> None:
    batches = list(applied_batches("shell", tmp_path / "c.db"))
    events = [a for b in batches for a in b]
    spans, logs = run(batches)
    [turn] = by_name(spans, "invoke_agent")
    [tool] = by_name(spans, "execute_tool")
    thread_id = events[0].event.thread_id
    turn_id = next(a.event.turn_id for a in events if a.event.kind == "turn_started")
    assert turn_id is not None

    t = dict(turn.attributes)
    assert t[sc.GEN_AI_OPERATION_NAME] == "invoke_agent"
    assert t[sc.GEN_AI_CONVERSATION_ID] == thread_id
    assert t[sc.GEN_AI_PROVIDER_NAME] == "openai" and t[sc.GEN_AI_SYSTEM] == "openai"
    assert t[sc.CAPTURE_SOURCE] == "app_server_stream"
    assert t[sc.CAPTURE_DEDUP_DECISION] == "accepted"
    assert t[sc.CAPTURE_TURN_STATUS] == "completed"
    # the first turn of the thread: the sum of its model calls equals the thread's running total
    total = last_usage(events)
    assert t[sc.GEN_AI_USAGE_INPUT_TOKENS] == total["inputTokens"]
    assert t[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == total["outputTokens"]
    assert t[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == total["cachedInputTokens"]
    started = next(a.event.emitted_at_ms for a in events if a.event.kind == "turn_started")
    completed = next(a.event.emitted_at_ms for a in events if a.event.kind == "turn_completed")
    assert (turn.start_time, turn.end_time) == (started * 1_000_000, completed * 1_000_000)  # type: ignore[operator]
    assert turn.parent is None
    assert turn.context.trace_id == trace_id_for(thread_id, turn_id)
    assert turn.context.span_id == turn_span_id(thread_id, turn_id)

    cmd = next(a.event for a in events if a.event.kind == "item_completed" and a.event.item
               and a.event.item.type == "commandExecution")  # fmt: skip
    assert cmd.item is not None and cmd.item_id is not None
    a = dict(tool.attributes)
    assert a[sc.GEN_AI_OPERATION_NAME] == "execute_tool"
    assert a[sc.GEN_AI_TOOL_NAME] == "shell"
    assert a[sc.GEN_AI_TOOL_CALL_ID] == cmd.item_id
    assert a[sc.GEN_AI_CONVERSATION_ID] == thread_id
    assert a[sc.CAPTURE_TOOL_EXIT_CODE] == 0
    assert a[sc.GEN_AI_TOOL_CALL_ARGUMENTS] == cmd.item.command
    assert "recorder line 3" in a[sc.GEN_AI_TOOL_CALL_RESULT]
    assert a[sc.CAPTURE_DEDUP_DECISION] == "accepted"
    assert tool.parent.span_id == turn.context.span_id
    assert tool.context.trace_id == turn.context.trace_id
    assert tool.context.span_id == item_span_id(thread_id, cmd.item_id)
    assert (tool.start_time, tool.end_time) == (cmd.item.started_at_ms * 1_000_000,  # type: ignore[operator]
                                                cmd.item.completed_at_ms * 1_000_000)  # type: ignore[operator]  # fmt: skip

    names = [r.log_record.event_name for r in logs]
    completed_items = [a for a in events if a.event.kind == "item_completed"]
    assert names.count(sc.EVENT_ITEM_COMPLETED) == len(completed_items) == 5
    assert names.count(sc.EVENT_TURN_STARTED) == names.count(sc.EVENT_TURN_COMPLETED) == 1
    assert names.count(sc.EVENT_THREAD_STARTED) == 1
    for record in logs:
        r = record.log_record
        attrs = dict(r.attributes)
        assert attrs[sc.CAPTURE_SOURCE] == "app_server_stream"
        assert attrs[sc.CAPTURE_DEDUP_DECISION] == "accepted"
        assert attrs[sc.GEN_AI_CONVERSATION_ID] == thread_id
        if r.event_name == sc.EVENT_ITEM_COMPLETED:
            assert attrs[sc.CAPTURE_ITEM_TYPE] and attrs[sc.CAPTURE_ITEM_ID]
            assert r.trace_id == turn.context.trace_id  # correlated with the turn
    tool_log = next(r.log_record for r in logs if dict(r.log_record.attributes).get(sc.CAPTURE_ITEM_TYPE)
                    == "commandExecution")  # fmt: skip
    assert tool_log.span_id == tool.context.span_id


def test_chat_turn_has_no_tool_span(tmp_path: Path) -> None:
    spans, logs = run([applied("chat", tmp_path / "c.db")])
    assert [s.name for s in spans] == ["invoke_agent"]
    messages = [r.log_record.body for r in logs if dict(r.log_record.attributes).get(sc.CAPTURE_ITEM_TYPE)
                == "agentMessage"]  # fmt: skip
    assert messages == ["Hello from the fake Responses server! You said: Say hi to the recorder."]


def test_ids_are_the_same_on_every_run(tmp_path: Path) -> None:
    first, _ = run([applied("shell", tmp_path / "a.db")])
    second, _ = run([applied("shell", tmp_path / "b.db")])

    def ids(spans: list[Any]) -> list[tuple[int, int]]:
        return sorted((s.context.trace_id, s.context.span_id) for s in spans)

    assert ids(first) == ids(second) and len(ids(first)) == 2


def test_turn_completed_without_its_start_takes_the_duration_from_the_turn(tmp_path: Path) -> None:
    events = applied("shell", tmp_path / "c.db")
    without_start = [a for a in events if a.event.kind != "turn_started"]
    spans, _ = run([without_start])
    [turn] = by_name(spans, "invoke_agent")
    assert turn.end_time - turn.start_time == 2364 * 1_000_000  # the recorded turn's durationMs


def test_providers_are_never_global(tmp_path: Path) -> None:
    run([applied("chat", tmp_path / "c.db")])
    assert isinstance(otel_trace.get_tracer_provider(), otel_trace.ProxyTracerProvider)
    assert type(otel_logs.get_logger_provider()).__name__ == "ProxyLoggerProvider"


def _copies(scenario: str, source: str) -> list[Any]:
    return [msgspec.structs.replace(ev, source=source) for ev in stream_events(scenario)]


@pytest.mark.parametrize(
    ("first", "second", "tool_spans", "later_logs"),
    [
        ("app_server_stream", OTEL, 1, 0),  # the OTEL copy is dropped by the ledger: nothing exported twice
        (OTEL, "app_server_stream", 2, 5),  # the stream copy replaces it: same span ids, decision "replaced"
    ],
)
def test_dedup_decision_is_carried(tmp_path: Path, first: str, second: str, tool_spans: int, later_logs: int) -> None:
    store = CaptureStore(Database(tmp_path / "c.db"))
    batches = [store.apply(_copies("shell", first)), store.apply(_copies("shell", second))]
    spans, logs = run(batches)
    tools = by_name(spans, "execute_tool")
    assert len(tools) == tool_spans
    assert len({s.context.span_id for s in tools}) == 1
    assert dict(tools[0].attributes)[sc.CAPTURE_SOURCE] == first
    later = [r for r in logs if dict(r.log_record.attributes)[sc.CAPTURE_SOURCE] == second
             and r.log_record.event_name == sc.EVENT_ITEM_COMPLETED]  # fmt: skip
    assert len(later) == later_logs
    assert all(dict(r.log_record.attributes)[sc.CAPTURE_DEDUP_DECISION] == "replaced" for r in later)
    if later_logs:
        last = dict(tools[-1].attributes)
        assert last[sc.CAPTURE_DEDUP_DECISION] == "replaced"
        assert last[sc.CAPTURE_DEDUP_REPLACED_SOURCE] == OTEL


def test_long_content_is_cut_and_flagged(tmp_path: Path) -> None:
    events = applied("shell", tmp_path / "c.db")
    for a in events:
        if a.event.item is not None and a.event.item.type == "commandExecution" and a.event.kind == "item_completed":
            a.event.item.output = "x" * (MAX_CONTENT_CHARS * 3)
    spans, logs = run([events])
    [tool] = by_name(spans, "execute_tool")
    assert len(tool.attributes[sc.GEN_AI_TOOL_CALL_RESULT]) == MAX_CONTENT_CHARS
    assert tool.attributes[sc.CAPTURE_CONTENT_TRUNCATED] is True
    tool_log = next(r.log_record for r in logs if r.log_record.attributes.get(sc.CAPTURE_ITEM_TYPE)
                    == "commandExecution")  # fmt: skip
    assert len(tool_log.body) == MAX_CONTENT_CHARS


def test_failed_command_marks_the_span_as_error(tmp_path: Path) -> None:
    events = applied("shell", tmp_path / "c.db")
    for a in events:
        if a.event.item is not None and a.event.item.type == "commandExecution" and a.event.kind == "item_completed":
            a.event.item.exit_code = 2
            a.event.item.status = "failed"
    spans, _ = run([events])
    [tool] = by_name(spans, "execute_tool")
    assert tool.status.status_code.name == "ERROR"
    assert tool.attributes[sc.ERROR_TYPE] == "tool_failed"
    assert tool.attributes[sc.CAPTURE_TOOL_EXIT_CODE] == 2
