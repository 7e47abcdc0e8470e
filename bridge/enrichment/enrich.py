"""Committed capture batches → OpenTelemetry spans and log records.

:class:`Enricher` turns the :class:`~bridge.capture.rows.Applied` events of
each committed batch into

* one ``invoke_agent`` span per turn (from ``turn/started`` to
  ``turn/completed``, with the turn's token usage),
* one ``execute_tool`` child span per tool item (command, file change, MCP
  or dynamic tool call, web search), and
* log records with an event name for thread starts, turn starts/ends, turn
  errors and completed items,

all carrying GenAI semantic-convention attributes plus ``capture.source``
and the dedup decision. Providers are built by
:mod:`bridge.enrichment.providers` and injected, never set globally; trace
and span ids are derived from thread/turn/item ids there. Spans are created whole when their end is
seen (a span's start comes from the remembered start event or the item's
own timestamps), so only a small map of open turns is kept in memory.
Content is already redacted upstream; here it is only truncated.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
from opentelemetry._logs import SeverityNumber
from opentelemetry.context import Context
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    set_span_in_context,
)

from bridge import __version__
from bridge.capture import codex_events as ce
from bridge.capture.events import CaptureEvent
from bridge.capture.rows import Applied
from bridge.enrichment import semconv as sc
from bridge.enrichment.providers import Providers, item_span_id, item_trace_id, trace_id_for, turn_span_id

log = logging.getLogger("bridge.enrichment.enrich")

MAX_CONTENT_CHARS = 4096  # per content attribute / log body; the rest is cut and flagged
MAX_OPEN_TURNS = 1024

TOOL_ITEMS: dict[str, tuple[str, str]] = {  # item type -> (tool name, gen_ai.tool.type)
    "commandExecution": ("shell", sc.TOOL_TYPE_FUNCTION),
    "fileChange": ("apply_patch", sc.TOOL_TYPE_FUNCTION),
    "mcpToolCall": ("mcp", sc.TOOL_TYPE_EXTENSION),
    "dynamicToolCall": ("dynamic_tool", sc.TOOL_TYPE_FUNCTION),
    "webSearch": ("web_search", sc.TOOL_TYPE_FUNCTION),
}
_PROVIDERS = {"codex": sc.PROVIDER_OPENAI, "claude": sc.PROVIDER_ANTHROPIC}
_FAILED = ("failed", "declined", "error")
_ITEM_DECODER = msgspec.json.Decoder(ce.ItemCompleted)
_TURN_DECODER = msgspec.json.Decoder(ce.TurnCompleted)


# ===================================================================== mapping


@dataclass
class _OpenTurn:
    started_ms: int | None = None
    usage: dict[str, int] = field(default_factory=dict)
    usage_keys: set[str] = field(default_factory=set)


def _cut(text: str | None) -> tuple[str | None, bool]:
    if text is None or len(text) <= MAX_CONTENT_CHARS:
        return text, False
    return text[:MAX_CONTENT_CHARS], True


def _context(trace_id: int, span_id: int) -> Context:
    """A context whose current span is the (already or later exported) span with these ids."""
    span_context = SpanContext(trace_id, span_id, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    return set_span_in_context(NonRecordingSpan(span_context), Context())


def _ns(ms: int | None) -> int | None:
    return None if ms is None else ms * 1_000_000


def _decision_attrs(applied: Applied) -> dict[str, Any]:
    ev, out = applied.event, applied.outcome
    attrs: dict[str, Any] = {
        sc.CAPTURE_SOURCE: ev.source,
        sc.CAPTURE_DEDUP_DECISION: out.decision,
        sc.CAPTURE_DEDUP_CHOSEN_SOURCE: out.chosen_source,
    }
    if out.replaced_source:
        attrs[sc.CAPTURE_DEDUP_REPLACED_SOURCE] = out.replaced_source
    return attrs


_USAGE_ATTRS = {
    "inputTokens": sc.GEN_AI_USAGE_INPUT_TOKENS,
    "outputTokens": sc.GEN_AI_USAGE_OUTPUT_TOKENS,
    "cachedInputTokens": sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
    "cacheWriteInputTokens": sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
    "reasoningOutputTokens": sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
}


class Enricher:
    """Maps :class:`Applied` batches to spans and log records on injected providers.

    Call :meth:`observe` on the event loop with every committed batch; it
    only builds objects (the SDK processors hand them to the outbox).
    """

    def __init__(self, providers: Providers, *, clock_ns: Callable[[], int] = time.time_ns) -> None:
        self._tracer = providers.tracer_provider.get_tracer(sc.SCOPE_NAME, __version__)
        self._logger = providers.logger_provider.get_logger(sc.SCOPE_NAME, __version__)
        self._ids = providers.ids
        self._clock_ns = clock_ns
        self._turns: OrderedDict[tuple[str, str], _OpenTurn] = OrderedDict()
        self.spans = 0
        self.log_records = 0

    # ------------------------------------------------------------ entry
    def observe(self, batch: Sequence[Applied]) -> None:
        for applied in batch:
            try:
                self._one(applied)
            except Exception:
                log.exception("enriching %s failed; the event is not exported", applied.event.method)

    def _one(self, applied: Applied) -> None:
        ev = applied.event
        kind = ev.kind
        kept = applied.outcome.decision != "dropped"  # a dropped copy lost to the stored one: no span twice
        if kind == "delta" or kind == "item_started" or kind == "other":
            return
        if kind == "usage":
            if kept and ev.turn_id and ev.usage:
                self._add_usage(ev)
            return
        if kind == "turn_started":
            if kept and ev.turn_id:
                self._open(ev.thread_id, ev.turn_id).started_ms = ev.emitted_at_ms
            self._log(applied, sc.EVENT_TURN_STARTED)
        elif kind == "turn_completed":
            if kept and ev.turn_id:
                self._turn_span(applied)
            self._log(applied, sc.EVENT_TURN_COMPLETED)
        elif kind == "item_completed":
            item_type = ev.item.type if ev.item else None
            if kept and ev.item_id and item_type in TOOL_ITEMS:
                self._tool_span(applied)
            self._log(applied, sc.EVENT_ITEM_COMPLETED)
        elif kind == "error":
            self._log(applied, sc.EVENT_TURN_ERROR)
        elif kind == "thread":
            self._log(applied, sc.EVENT_THREAD_STARTED)

    # ------------------------------------------------------------ turns
    def _open(self, thread_id: str, turn_id: str) -> _OpenTurn:
        key = (thread_id, turn_id)
        turn = self._turns.get(key)
        if turn is None:
            turn = self._turns[key] = _OpenTurn()
            while len(self._turns) > MAX_OPEN_TURNS:
                self._turns.popitem(last=False)  # a turn that never completed (its sidecar died)
        return turn

    def _add_usage(self, ev: CaptureEvent) -> None:
        assert ev.turn_id is not None and ev.usage is not None
        turn = self._open(ev.thread_id, ev.turn_id)
        if ev.key in turn.usage_keys:
            return
        turn.usage_keys.add(ev.key)
        last = ev.usage.get("last")  # this model call's usage; a turn's usage is the sum over its calls
        if not isinstance(last, dict):
            return
        for name in _USAGE_ATTRS:
            value = last.get(name)
            if isinstance(value, int):
                turn.usage[name] = turn.usage.get(name, 0) + value

    def _turn_span(self, applied: Applied) -> None:
        ev = applied.event
        assert ev.turn_id is not None
        turn = self._turns.pop((ev.thread_id, ev.turn_id), None) or _OpenTurn()
        end_ms = ev.emitted_at_ms
        start_ms = turn.started_ms
        if start_ms is None:  # started before this bridge was watching: the turn says how long it took
            start_ms = self._turn_start_from_payload(ev, end_ms)
        attrs = self._common(ev)
        attrs[sc.GEN_AI_OPERATION_NAME] = sc.OP_INVOKE_AGENT
        attrs[sc.GEN_AI_AGENT_NAME] = ev.provider
        attrs[sc.CAPTURE_TURN_ID] = ev.turn_id
        if ev.turn_status:
            attrs[sc.CAPTURE_TURN_STATUS] = ev.turn_status
        if ev.turn_error:
            attrs[sc.CAPTURE_TURN_ERROR] = _cut(ev.turn_error)[0]
        for name, value in turn.usage.items():
            attrs[_USAGE_ATTRS[name]] = value
        attrs.update(_decision_attrs(applied))
        status = None
        if ev.turn_status == "failed":
            attrs[sc.ERROR_TYPE] = "turn_failed"
            status = Status(StatusCode.ERROR, _cut(ev.turn_error)[0] or "the turn failed")
        self._ids.use(trace_id_for(ev.thread_id, ev.turn_id), turn_span_id(ev.thread_id, ev.turn_id))
        self._span(sc.SPAN_INVOKE_AGENT, Context(), attrs, start_ms, end_ms, status)

    @staticmethod
    def _turn_start_from_payload(ev: CaptureEvent, end_ms: int | None) -> int | None:
        if not ev.raw_params:
            return end_ms
        try:
            turn = _TURN_DECODER.decode(ev.raw_params).turn
        except msgspec.MsgspecError:
            return end_ms
        if end_ms is not None and turn.duration_ms is not None:
            return end_ms - turn.duration_ms
        if turn.started_at is not None:
            return turn.started_at * 1000
        return end_ms

    # ------------------------------------------------------------ tools
    def _tool_span(self, applied: Applied) -> None:
        ev = applied.event
        item = ev.item
        assert item is not None and item.type is not None and ev.item_id is not None
        name, tool_type = TOOL_ITEMS[item.type]
        server = None
        if item.type in ("mcpToolCall", "dynamicToolCall") and ev.raw_params:
            try:
                wire = _ITEM_DECODER.decode(ev.raw_params).item
                name, server = wire.tool or name, wire.server
            except msgspec.MsgspecError:
                pass
        attrs = self._common(ev)
        attrs[sc.GEN_AI_OPERATION_NAME] = sc.OP_EXECUTE_TOOL
        attrs[sc.GEN_AI_TOOL_NAME] = name
        attrs[sc.GEN_AI_TOOL_TYPE] = tool_type
        attrs[sc.GEN_AI_TOOL_CALL_ID] = ev.item_id
        attrs[sc.CAPTURE_ITEM_ID] = ev.item_id
        attrs[sc.CAPTURE_ITEM_TYPE] = item.type
        if server:
            attrs[sc.CAPTURE_TOOL_SERVER] = server
        if ev.turn_id:
            attrs[sc.CAPTURE_TURN_ID] = ev.turn_id
        if item.status:
            attrs[sc.CAPTURE_ITEM_STATUS] = item.status
        if item.exit_code is not None:
            attrs[sc.CAPTURE_TOOL_EXIT_CODE] = item.exit_code
        arguments, cut_args = _cut(item.command)
        result, cut_result = _cut(item.output)
        if arguments:
            attrs[sc.GEN_AI_TOOL_CALL_ARGUMENTS] = arguments
        if result:
            attrs[sc.GEN_AI_TOOL_CALL_RESULT] = result
        if cut_args or cut_result:
            attrs[sc.CAPTURE_CONTENT_TRUNCATED] = True
        attrs.update(_decision_attrs(applied))
        status = None
        if item.status in _FAILED or (item.exit_code is not None and item.exit_code != 0):
            attrs[sc.ERROR_TYPE] = "tool_" + (item.status if item.status in _FAILED else "nonzero_exit")
            status = Status(StatusCode.ERROR, f"{name} {item.status or 'failed'}")
        end_ms = item.completed_at_ms or ev.emitted_at_ms
        start_ms = item.started_at_ms or end_ms
        if ev.turn_id:
            parent = self._turn_context(ev.thread_id, ev.turn_id)
            self._ids.use(None, item_span_id(ev.thread_id, ev.item_id))
        else:
            parent = Context()
            trace_id = item_trace_id(ev.thread_id, ev.item_id)
            self._ids.use(trace_id, item_span_id(ev.thread_id, ev.item_id))
        self._span(sc.SPAN_EXECUTE_TOOL, parent, attrs, start_ms, end_ms, status)

    # ------------------------------------------------------------ shared
    @staticmethod
    def _common(ev: CaptureEvent) -> dict[str, Any]:
        provider = _PROVIDERS.get(ev.provider, ev.provider)
        return {
            sc.GEN_AI_CONVERSATION_ID: ev.thread_id,
            sc.GEN_AI_PROVIDER_NAME: provider,
            sc.GEN_AI_SYSTEM: provider,
        }

    @staticmethod
    def _turn_context(thread_id: str, turn_id: str) -> Context:
        return _context(trace_id_for(thread_id, turn_id), turn_span_id(thread_id, turn_id))

    def _span(
        self, name: str, parent: Context, attrs: dict[str, Any], start_ms: int | None, end_ms: int | None,
        status: Status | None,
    ) -> None:  # fmt: skip
        now = self._clock_ns()
        end_ns = _ns(end_ms) or now
        start_ns = min(_ns(start_ms) or end_ns, end_ns)
        span = self._tracer.start_span(name, context=parent, kind=SpanKind.INTERNAL, attributes=attrs,
                                       start_time=start_ns)  # fmt: skip
        if status is not None:
            span.set_status(status)
        span.end(end_time=end_ns)
        self.spans += 1

    def _log(self, applied: Applied, event_name: str) -> None:
        ev = applied.event
        attrs = self._common(ev)
        attrs[sc.CAPTURE_EVENT_KEY] = ev.key
        attrs[sc.CAPTURE_EVENT_METHOD] = ev.method
        attrs.update(_decision_attrs(applied))
        body: str | None = None
        context = Context()
        severity = SeverityNumber.INFO
        if ev.turn_id:
            attrs[sc.CAPTURE_TURN_ID] = ev.turn_id
            context = self._turn_context(ev.thread_id, ev.turn_id)
        if ev.item_id:
            attrs[sc.CAPTURE_ITEM_ID] = ev.item_id
        item = ev.item
        if item is not None:
            if item.type:
                attrs[sc.CAPTURE_ITEM_TYPE] = item.type
            if item.status:
                attrs[sc.CAPTURE_ITEM_STATUS] = item.status
            if item.exit_code is not None:
                attrs[sc.CAPTURE_TOOL_EXIT_CODE] = item.exit_code
            body, cut = _cut(item.text if item.text is not None else item.output)
            if cut:
                attrs[sc.CAPTURE_CONTENT_TRUNCATED] = True
            if item.type in TOOL_ITEMS and ev.item_id and ev.turn_id:
                span_id = item_span_id(ev.thread_id, ev.item_id)
                context = _context(trace_id_for(ev.thread_id, ev.turn_id), span_id)
        if ev.turn_status:
            attrs[sc.CAPTURE_TURN_STATUS] = ev.turn_status
        if ev.turn_error:
            attrs[sc.CAPTURE_TURN_ERROR] = _cut(ev.turn_error)[0]
            severity = SeverityNumber.ERROR
        if ev.kind == "thread":
            if ev.title:
                attrs[sc.CAPTURE_THREAD_TITLE] = _cut(ev.title)[0]
            if ev.cwd:
                attrs[sc.CAPTURE_THREAD_CWD] = ev.cwd
        now = self._clock_ns()
        self._logger.emit(
            timestamp=_ns(ev.emitted_at_ms) or now,
            observed_timestamp=now,
            context=context,
            severity_number=severity,
            severity_text=severity.name,
            body=body,
            attributes=attrs,
            event_name=event_name,
        )
        self.log_records += 1
