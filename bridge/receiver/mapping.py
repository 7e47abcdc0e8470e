"""OTEL records → :class:`CaptureEvent` (pure, no I/O): the baseline's half of hybrid capture.

The receiver stores every record once (``otel_records``); this module says what a
record means for the captured thread. It uses the identity the stream shares
with the baseline, so both end up on the same ledger keys and the store's
precedence decides between them:

The full table is in ``docs/crosssource.md``. In short: codex's
``conversation.id`` is the thread id, ``codex.agent_response``'s ``item.id`` the
agentMessage item, ``codex.tool_decision`` / ``codex.tool_result``'s ``call_id``
the commandExecution item (shared keys ``item/started|T|I`` and ``item|T|I``),
the ``run_turn`` span the turn (``turn/started|T|U``, ``turn/completed|T|U``);
``codex.user_prompt`` becomes item ``userprompt:<turn>``, which the store joins
to the stream's userMessage of that turn. Claude Code's ``session.id`` is the
thread and ``prompt.id`` the turn. Token counts, API durations, tool decisions
and tool durations become ``usage`` events (summed into the turn's
``usage.otel``) or an item's ``extra`` (carried in ``CaptureEvent.usage`` of an
item event).

A record's turn comes from its own ``turn.id`` / ``prompt.id`` or, when it has
none (``codex.user_prompt``, ``codex.tool_*``, ``codex.api_request``), from any
other record of the same trace that carries one: :func:`learns` says what a
record teaches, and :mod:`bridge.receiver.baseline` keeps that memory. Texts are
redacted here, as the stream's normaliser does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import msgspec

from bridge.capture.events import OTEL, CaptureEvent, ItemFields
from bridge.capture.ledger import item_content_key, lifecycle_key
from bridge.capture.store import prompt_item_id
from bridge.receiver.records import CLAUDE, CODEX, OtelRecord
from bridge.redact import redact, redact_text

# codex tools whose call is the stream's commandExecution item (call_id = item id). The code-mode
# wrapper ``exec`` is not an item of its own (its nested exec_command calls are), and other tools'
# ids are not known to match a stream item, so they stay in otel_records only.
CODEX_SHELL_TOOLS = frozenset({"exec_command", "shell", "shell_command", "local_shell", "container.exec"})
CLAUDE_SHELL_TOOLS = frozenset({"Bash"})
CLAUDE_EDIT_TOOLS = frozenset({"Edit", "MultiEdit", "Write", "NotebookEdit"})
DECLINED = frozenset({"denied", "abort", "reject", "rejected", "declined", "cancel"})

_EXEC_HEADER = ("Chunk ID:", "Wall time:", "Process exited with code ", "Process running with session ID ",
                "Original token count:", "Total output lines:")  # fmt: skip
_EXIT_CODE = re.compile(r"Process exited with code (-?\d+)")
_decode_json = msgspec.json.decode

CODEX_EVENTS = frozenset(
    {
        "codex.conversation_starts",
        "codex.user_prompt",
        "codex.agent_response",
        "codex.tool_decision",
        "codex.tool_result",
        "codex.api_request",
    }
)
CLAUDE_EVENTS = frozenset(
    {
        "claude_code.user_prompt",
        "claude_code.assistant_response",
        "claude_code.tool_decision",
        "claude_code.tool_result",
        "claude_code.api_request",
    }
)
TURN_SPANS = frozenset({"run_turn", "claude_code.interaction"})


# -- reading attributes -----------------------------------------------------------------------


def _str(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str):
        try:
            return int(float(value))
        except ValueError:
            return None
    return None


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _true(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def _ms(time_ns: int | None) -> int | None:
    return None if time_ns is None else time_ns // 1_000_000


def _span_ms(record: OtelRecord, field: str) -> int | None:
    value = record.detail.get(field)
    return _ms(value) if isinstance(value, int) and value > 0 else None


# -- what a record is ---------------------------------------------------------------------------


def relevant(record: OtelRecord) -> bool:
    """Whether the record can become capture content (everything else stays in otel_records only)."""
    name = record.name
    if record.provider == CODEX:
        if record.signal == "log":
            return name in CODEX_EVENTS or is_token_count(record)
        return record.signal == "span" and name == "run_turn"
    if record.provider == CLAUDE:
        if record.signal == "log":
            return name in CLAUDE_EVENTS
        return record.signal == "span" and name == "claude_code.interaction"
    return False


def is_token_count(record: OtelRecord) -> bool:
    """codex's ``response.completed`` SSE event that carries the request's token counts."""
    attrs = record.attributes
    return (
        record.name == "codex.sse_event"
        and attrs.get("event.kind") == "response.completed"
        and "input_token_count" in attrs
    )


def lends_trace(record: OtelRecord) -> bool:
    """``codex.api_request``: the SSE events logged after it (no trace of their own) belong to its turn."""
    return record.provider == CODEX and record.name == "codex.api_request"


def needs_turn(record: OtelRecord) -> bool:
    """Items and usage must wait for their turn; threads need none."""
    return record.name not in ("codex.conversation_starts",)


def order_ns(record: OtelRecord) -> int:
    """When the record happened, for ordering: a span counts at its end (a turn ends with its span)."""
    if record.signal == "span":
        end = record.detail.get("endTimeUnixNano")
        if isinstance(end, int) and end > 0:
            return end
    return record.time_ns or 0


def learns(record: OtelRecord) -> tuple[str, str | None, str | None] | None:
    """``(trace_id, conversation_id, turn_id)`` the record reveals about its trace, if anything."""
    if record.trace_id is None or (record.turn_id is None and record.conversation_id is None):
        return None
    if record.provider not in (CODEX, CLAUDE):
        return None
    return record.trace_id, record.conversation_id, record.turn_id


# -- records → events ---------------------------------------------------------------------------


def to_events(record: OtelRecord, conversation_id: str, turn_id: str | None) -> list[CaptureEvent]:
    """The capture events of one relevant record, in the thread ``conversation_id`` and turn ``turn_id``."""
    if record.provider == CODEX:
        if record.signal == "span":
            return _turn_span(record, conversation_id, turn_id, "codex")
        return _codex(record, conversation_id, turn_id)
    if record.provider == CLAUDE:
        if record.signal == "span":
            return _turn_span(record, conversation_id, turn_id, "claude_code")
        return _claude(record, conversation_id, turn_id)
    return []


def _event(
    kind: Any,
    record: OtelRecord,
    key: str,
    thread_id: str,
    turn_id: str | None,
    item_id: str | None,
    provider: str,
    *,
    item: ItemFields | None = None,
    usage: dict[str, Any] | None = None,
    at_ms: int | None = None,
    turn_status: str | None = None,
    turn_error: str | None = None,
) -> CaptureEvent:
    payload: dict[str, Any] = {"threadId": thread_id, "turnId": turn_id, "itemId": item_id, "record": record.name}
    if item is not None:
        payload["item"] = msgspec.to_builtins(item)
    if usage is not None:
        payload["extra" if item is not None else "usage"] = usage
    if turn_status is not None:
        payload["status"] = turn_status
    return CaptureEvent(
        kind,
        record.name or "otel",
        OTEL,
        key,
        thread_id,
        turn_id,
        item_id,
        at_ms if at_ms is not None else _ms(record.time_ns),
        item=item,
        usage=usage,
        turn_status=turn_status,
        turn_error=turn_error,
        provider=provider,
        payload=payload,
    )


def _thread(record: OtelRecord, thread_id: str, provider: str) -> CaptureEvent:
    return _event("thread", record, lifecycle_key("thread/started", thread_id), thread_id, None, None, provider)


def _prompt(record: OtelRecord, thread_id: str, turn_id: str | None, provider: str) -> CaptureEvent:
    # No id of its own: one per turn, joined by the store to the stream's userMessage of that turn.
    if turn_id is not None:
        item_id = prompt_item_id(turn_id)
    elif record.trace_id is not None:
        item_id = prompt_item_id(f"trace:{record.trace_id}")
    else:
        item_id = prompt_item_id(f"at:{record.time_ns}")
    text = _str(record.attributes.get("prompt"))
    at = _ms(record.time_ns)
    fields = ItemFields(
        type="userMessage",
        status="completed",
        text=redact_text(text) if text else None,
        started_at_ms=at,
        completed_at_ms=at,
    )
    key = item_content_key(thread_id, item_id)
    return _event("item_completed", record, key, thread_id, turn_id, item_id, provider, item=fields)


def _agent_message(
    record: OtelRecord, thread_id: str, turn_id: str | None, item_id: str, provider: str
) -> CaptureEvent:
    attrs = record.attributes
    text = _str(attrs.get("response"))
    at = _ms(record.time_ns)
    fields = ItemFields(
        type="agentMessage", status="completed", text=redact_text(text) if text else text, completed_at_ms=at
    )
    extra = {"truncated": True} if _true(attrs.get("response_truncated")) else None
    key = item_content_key(thread_id, item_id)
    return _event("item_completed", record, key, thread_id, turn_id, item_id, provider, item=fields, usage=extra)


def unwrap_exec_output(output: str) -> tuple[str, int | None]:
    """codex's exec_command tool output without its header (``Chunk ID``, ``Wall time``, exit code…).

    Returns the plain output and the exit code; text of another shape comes back as it is.
    """
    exit_code: int | None = None
    offset = 0
    for _ in range(len(_EXEC_HEADER) + 1):
        end = output.find("\n", offset)
        if end < 0:
            return output, None
        line = output[offset:end]
        offset = end + 1
        if line == "Output:":
            return output[offset:], exit_code
        if not line.startswith(_EXEC_HEADER):
            return output, None
        code = _EXIT_CODE.match(line)
        if code is not None:
            exit_code = int(code.group(1))
    return output, None


def _command_of(arguments: Any) -> str | None:
    args = arguments
    if isinstance(arguments, str):
        try:
            args = _decode_json(arguments)
        except msgspec.DecodeError:
            return arguments or None
    if isinstance(args, dict):
        cmd = args.get("cmd") or args.get("command")
        if isinstance(cmd, list):
            return " ".join(str(c) for c in cmd)
        return _str(cmd)
    return None


def _codex(record: OtelRecord, thread_id: str, turn_id: str | None) -> list[CaptureEvent]:
    name, attrs = record.name, record.attributes
    if name == "codex.conversation_starts":
        return [_thread(record, thread_id, "codex")]
    if name == "codex.user_prompt":
        return [_prompt(record, thread_id, turn_id, "codex")]
    if name == "codex.agent_response":
        item_id = record.item_id
        return [_agent_message(record, thread_id, turn_id, item_id, "codex")] if item_id else []
    if name in ("codex.tool_decision", "codex.tool_result"):
        call_id = record.call_id
        if call_id is None or attrs.get("tool_name") not in CODEX_SHELL_TOOLS:
            return []
        if name == "codex.tool_decision":
            return [_tool_decision(record, thread_id, turn_id, call_id, "commandExecution", "codex")]
        return [_codex_tool_result(record, thread_id, turn_id, call_id)]
    if name == "codex.api_request":
        usage = {"apiRequests": 1}
        duration = _int(attrs.get("duration_ms"))
        if duration is not None:
            usage["apiDurationMs"] = duration
        return [_usage(record, thread_id, turn_id, usage, "codex")]
    if is_token_count(record):
        tokens = {
            "inputTokens": _int(attrs.get("input_token_count")),
            "cachedInputTokens": _int(attrs.get("cached_token_count")),
            "cacheWriteInputTokens": _int(attrs.get("cache_write_token_count")),
            "outputTokens": _int(attrs.get("output_token_count")),
            "reasoningOutputTokens": _int(attrs.get("reasoning_token_count")),
        }
        usage = {k: v for k, v in tokens.items() if v is not None}
        usage["totalTokens"] = usage.get("inputTokens", 0) + usage.get("outputTokens", 0)
        return [_usage(record, thread_id, turn_id, usage, "codex")]
    return []


def _tool_decision(
    record: OtelRecord, thread_id: str, turn_id: str | None, item_id: str, item_type: str, provider: str
) -> CaptureEvent:
    attrs = record.attributes
    decision = _str(attrs.get("decision"))
    status = "declined" if decision and decision.lower() in DECLINED else "inProgress"
    fields = ItemFields(type=item_type, status=status, started_at_ms=_ms(record.time_ns))
    extra = {"toolDecision": {"decision": decision, "source": _str(attrs.get("source"))}}
    key = lifecycle_key("item/started", thread_id, item_id)
    return _event("item_started", record, key, thread_id, turn_id, item_id, provider, item=fields, usage=extra)


def _codex_tool_result(record: OtelRecord, thread_id: str, turn_id: str | None, call_id: str) -> CaptureEvent:
    attrs = record.attributes
    raw = _str(attrs.get("output"))
    output, exit_code = unwrap_exec_output(raw) if raw is not None else (None, None)
    success = _true(attrs.get("success"))
    duration = _int(attrs.get("duration_ms"))
    done = _ms(record.time_ns)
    command = _command_of(attrs.get("arguments"))
    fields = ItemFields(
        type="commandExecution",
        status="failed" if success is False else "completed",
        output=redact_text(output) if output else output,
        exit_code=exit_code,
        command=redact_text(command) if command else None,
        started_at_ms=done - duration if done is not None and duration is not None else None,
        completed_at_ms=done,
    )
    extra: dict[str, Any] = {"toolName": _str(attrs.get("tool_name"))}
    if duration is not None:
        extra["durationMs"] = duration
    truncated = _true(attrs.get("output_truncated"))
    if truncated is not None:
        extra["outputTruncated"] = truncated
    key = item_content_key(thread_id, call_id)
    return _event("item_completed", record, key, thread_id, turn_id, call_id, "codex", item=fields, usage=extra)


def _usage(
    record: OtelRecord, thread_id: str, turn_id: str | None, usage: dict[str, Any], provider: str
) -> CaptureEvent:
    return _event("usage", record, f"otel|{record.dedup_key}", thread_id, turn_id, None, provider, usage=usage)


def _turn_span(record: OtelRecord, thread_id: str, turn_id: str | None, provider: str) -> list[CaptureEvent]:
    if turn_id is None:
        return []
    status = record.detail.get("status")
    code = status.get("code") if isinstance(status, Mapping) else None
    message = status.get("message") if isinstance(status, Mapping) else None
    failed = code == 2
    events = []
    if provider == "codex":  # Claude's turn starts with its user_prompt, logged at once
        start = _span_ms(record, "startTimeUnixNano")
        key = lifecycle_key("turn/started", thread_id, turn_id)
        events.append(_event("turn_started", record, key, thread_id, turn_id, None, provider, at_ms=start))
    key = lifecycle_key("turn/completed", thread_id, turn_id)
    events.append(
        _event(
            "turn_completed", record, key, thread_id, turn_id, None, provider,
            at_ms=_span_ms(record, "endTimeUnixNano"),
            turn_status="failed" if failed else "completed",
            turn_error=redact_text(message) if failed and isinstance(message, str) else None,
        )
    )  # fmt: skip
    return events


def _claude_tool_type(tool: str | None) -> str:
    if tool in CLAUDE_SHELL_TOOLS:
        return "commandExecution"
    if tool in CLAUDE_EDIT_TOOLS:
        return "fileChange"
    return "dynamicToolCall"


def _claude_tool_params(attrs: Mapping[str, Any]) -> dict[str, Any]:
    params = attrs.get("tool_parameters") or attrs.get("tool_input")
    if isinstance(params, str):
        try:
            params = _decode_json(params)
        except msgspec.DecodeError:
            return {}
    return params if isinstance(params, dict) else {}


def _claude(record: OtelRecord, thread_id: str, turn_id: str | None) -> list[CaptureEvent]:
    name, attrs = record.name, record.attributes
    seq = record.sequence
    if name == "claude_code.user_prompt":
        events = [_thread(record, thread_id, "claude_code")]
        if turn_id is not None:
            key = lifecycle_key("turn/started", thread_id, turn_id)
            events.append(_event("turn_started", record, key, thread_id, turn_id, None, "claude_code"))
        events.append(_prompt(record, thread_id, turn_id, "claude_code"))
        return events
    if name == "claude_code.assistant_response":
        item_id = record.item_id or f"response:{seq if seq is not None else record.time_ns}"
        return [_agent_message(record, thread_id, turn_id, item_id, "claude_code")]
    if name in ("claude_code.tool_decision", "claude_code.tool_result"):
        item_id = record.call_id or f"tool:{seq if seq is not None else record.time_ns}"
        tool = _str(attrs.get("tool_name"))
        item_type = _claude_tool_type(tool)
        if name == "claude_code.tool_decision":
            return [_tool_decision(record, thread_id, turn_id, item_id, item_type, "claude_code")]
        params = _claude_tool_params(attrs)
        command = _str(params.get("bash_command") or params.get("command") or params.get("full_command"))
        success = _true(attrs.get("success"))
        duration = _int(attrs.get("duration_ms"))
        done = _ms(record.time_ns)
        error = _str(attrs.get("error"))
        fields = ItemFields(
            type=item_type,
            status="failed" if success is False else "completed",
            output=redact_text(error) if error else None,
            command=redact_text(command) if command else None,
            started_at_ms=done - duration if done is not None and duration is not None else None,
            completed_at_ms=done,
        )
        extra: dict[str, Any] = {"toolName": tool}
        if duration is not None:
            extra["durationMs"] = duration
        if tool not in CLAUDE_SHELL_TOOLS and params:
            extra["toolParameters"] = redact(params)
        size = _int(attrs.get("tool_result_size_bytes"))
        if size is not None:
            extra["resultSizeBytes"] = size
        key = item_content_key(thread_id, item_id)
        return [
            _event("item_completed", record, key, thread_id, turn_id, item_id, "claude_code", item=fields, usage=extra)
        ]
    if name == "claude_code.api_request":
        tokens = {
            "inputTokens": _int(attrs.get("input_tokens")),
            "cachedInputTokens": _int(attrs.get("cache_read_tokens")),
            "cacheWriteInputTokens": _int(attrs.get("cache_creation_tokens")),
            "outputTokens": _int(attrs.get("output_tokens")),
            "apiDurationMs": _int(attrs.get("duration_ms")),
            "costUsd": _float(attrs.get("cost_usd")),
        }
        usage: dict[str, Any] = {k: v for k, v in tokens.items() if v is not None}
        usage["apiRequests"] = 1
        usage["totalTokens"] = usage.get("inputTokens", 0) + usage.get("outputTokens", 0)
        return [_usage(record, thread_id, turn_id, usage, "claude_code")]
    return []


# -- stored rows (fixtures, rebuilding from otel_records) ---------------------------------------


def record_from_row(row: Mapping[str, Any]) -> OtelRecord:
    """An :class:`OtelRecord` from an ``otel_records`` row (as a name → value mapping)."""

    def js(value: Any, default: Any) -> Any:
        if value is None:
            return default
        return _decode_json(value) if isinstance(value, str | bytes) else value

    return OtelRecord(
        dedup_key=row["dedup_key"],
        signal=row["signal"],
        provider=row["provider"],
        name=row.get("name"),
        time_ns=row.get("time_ns"),
        conversation_id=row.get("conversation_id"),
        turn_id=row.get("turn_id"),
        item_id=row.get("item_id"),
        call_id=row.get("call_id"),
        sequence=row.get("sequence"),
        trace_id=row.get("trace_id"),
        span_id=row.get("span_id"),
        service_name=row.get("service_name"),
        scope_name=row.get("scope_name"),
        body=js(row.get("body"), None),
        attributes=js(row.get("attributes"), {}),
        resource=js(row.get("resource"), {}),
        detail=js(row.get("detail"), {}),
    )
