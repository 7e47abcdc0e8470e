"""Claude Code's OTEL records → capture events (pure).

``session.id`` is the thread and ``prompt.id`` the turn; a user prompt starts
the thread and the turn, tool decisions and results become one item per tool
use (a shell, file-change or dynamic tool call by the tool's name), and API
requests become ``usage`` events (``docs/crosssource.md`` has the table).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from bridge.capture.events import CaptureEvent, ItemFields
from bridge.capture.ledger import item_content_key, lifecycle_key
from bridge.receiver.mapping_events import (
    agent_message_event,
    bool_of,
    decode_json,
    event,
    float_of,
    int_of,
    ms,
    prompt_event,
    str_of,
    thread_event,
    tool_decision_event,
    usage_event,
)
from bridge.receiver.records import OtelRecord
from bridge.redact import redact, redact_text

CLAUDE_SHELL_TOOLS = frozenset({"Bash"})
CLAUDE_EDIT_TOOLS = frozenset({"Edit", "MultiEdit", "Write", "NotebookEdit"})


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
            params = decode_json(params)
        except msgspec.DecodeError:
            return {}
    return params if isinstance(params, dict) else {}


def claude_events(record: OtelRecord, thread_id: str, turn_id: str | None) -> list[CaptureEvent]:
    name, attrs = record.name, record.attributes
    seq = record.sequence
    if name == "claude_code.user_prompt":
        events = [thread_event(record, thread_id, "claude_code")]
        if turn_id is not None:
            key = lifecycle_key("turn/started", thread_id, turn_id)
            events.append(event("turn_started", record, key, thread_id, turn_id, None, "claude_code"))
        events.append(prompt_event(record, thread_id, turn_id, "claude_code"))
        return events
    if name == "claude_code.assistant_response":
        item_id = record.item_id or f"response:{seq if seq is not None else record.time_ns}"
        return [agent_message_event(record, thread_id, turn_id, item_id, "claude_code")]
    if name in ("claude_code.tool_decision", "claude_code.tool_result"):
        item_id = record.call_id or f"tool:{seq if seq is not None else record.time_ns}"
        tool = str_of(attrs.get("tool_name"))
        item_type = _claude_tool_type(tool)
        if name == "claude_code.tool_decision":
            return [tool_decision_event(record, thread_id, turn_id, item_id, item_type, "claude_code")]
        params = _claude_tool_params(attrs)
        command = str_of(params.get("bash_command") or params.get("command") or params.get("full_command"))
        success = bool_of(attrs.get("success"))
        duration = int_of(attrs.get("duration_ms"))
        done = ms(record.time_ns)
        error = str_of(attrs.get("error"))
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
        size = int_of(attrs.get("tool_result_size_bytes"))
        if size is not None:
            extra["resultSizeBytes"] = size
        key = item_content_key(thread_id, item_id)
        return [
            event("item_completed", record, key, thread_id, turn_id, item_id, "claude_code", item=fields, usage=extra)
        ]
    if name == "claude_code.api_request":
        tokens = {
            "inputTokens": int_of(attrs.get("input_tokens")),
            "cachedInputTokens": int_of(attrs.get("cache_read_tokens")),
            "cacheWriteInputTokens": int_of(attrs.get("cache_creation_tokens")),
            "outputTokens": int_of(attrs.get("output_tokens")),
            "apiDurationMs": int_of(attrs.get("duration_ms")),
            "costUsd": float_of(attrs.get("cost_usd")),
        }
        usage: dict[str, Any] = {k: v for k, v in tokens.items() if v is not None}
        usage["apiRequests"] = 1
        usage["totalTokens"] = usage.get("inputTokens", 0) + usage.get("outputTokens", 0)
        return [usage_event(record, thread_id, turn_id, usage, "claude_code")]
    return []
