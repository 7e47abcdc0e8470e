"""codex's OTEL records → capture events (pure).

``conversation.id`` is the thread; ``codex.agent_response``'s ``item.id`` the
agentMessage item; ``codex.tool_decision`` / ``codex.tool_result`` of a shell
tool become the commandExecution item named by their ``call_id``;
``codex.api_request`` and the ``response.completed`` SSE event's token counts
become ``usage`` events (``docs/crosssource.md`` has the table).
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from bridge.capture.events import CaptureEvent, ItemFields
from bridge.capture.ledger import item_content_key
from bridge.receiver.mapping_events import (
    agent_message_event,
    bool_of,
    decode_json,
    event,
    int_of,
    ms,
    prompt_event,
    str_of,
    thread_event,
    tool_decision_event,
    usage_event,
)
from bridge.receiver.records import OtelRecord
from bridge.redact import redact_text

# codex tools whose call is the stream's commandExecution item (call_id = item id). The code-mode
# wrapper ``exec`` is not an item of its own (its nested exec_command calls are), and other tools'
# ids are not known to match a stream item, so they stay in otel_records only.
CODEX_SHELL_TOOLS = frozenset({"exec_command", "shell", "shell_command", "local_shell", "container.exec"})

_EXEC_HEADER = ("Chunk ID:", "Wall time:", "Process exited with code ", "Process running with session ID ",
                "Original token count:", "Total output lines:")  # fmt: skip
_EXIT_CODE = re.compile(r"Process exited with code (-?\d+)")


def is_token_count(record: OtelRecord) -> bool:
    """codex's ``response.completed`` SSE event that carries the request's token counts."""
    attrs = record.attributes
    return (
        record.name == "codex.sse_event"
        and attrs.get("event.kind") == "response.completed"
        and "input_token_count" in attrs
    )


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
            args = decode_json(arguments)
        except msgspec.DecodeError:
            return arguments or None
    if isinstance(args, dict):
        cmd = args.get("cmd") or args.get("command")
        if isinstance(cmd, list):
            return " ".join(str(c) for c in cmd)
        return str_of(cmd)
    return None


def codex_events(record: OtelRecord, thread_id: str, turn_id: str | None) -> list[CaptureEvent]:
    name, attrs = record.name, record.attributes
    if name == "codex.conversation_starts":
        return [thread_event(record, thread_id, "codex")]
    if name == "codex.user_prompt":
        return [prompt_event(record, thread_id, turn_id, "codex")]
    if name == "codex.agent_response":
        item_id = record.item_id
        return [agent_message_event(record, thread_id, turn_id, item_id, "codex")] if item_id else []
    if name in ("codex.tool_decision", "codex.tool_result"):
        call_id = record.call_id
        if call_id is None or attrs.get("tool_name") not in CODEX_SHELL_TOOLS:
            return []
        if name == "codex.tool_decision":
            return [tool_decision_event(record, thread_id, turn_id, call_id, "commandExecution", "codex")]
        return [_codex_tool_result(record, thread_id, turn_id, call_id)]
    if name == "codex.api_request":
        usage = {"apiRequests": 1}
        duration = int_of(attrs.get("duration_ms"))
        if duration is not None:
            usage["apiDurationMs"] = duration
        return [usage_event(record, thread_id, turn_id, usage, "codex")]
    if is_token_count(record):
        tokens = {
            "inputTokens": int_of(attrs.get("input_token_count")),
            "cachedInputTokens": int_of(attrs.get("cached_token_count")),
            "cacheWriteInputTokens": int_of(attrs.get("cache_write_token_count")),
            "outputTokens": int_of(attrs.get("output_token_count")),
            "reasoningOutputTokens": int_of(attrs.get("reasoning_token_count")),
        }
        usage = {k: v for k, v in tokens.items() if v is not None}
        usage["totalTokens"] = usage.get("inputTokens", 0) + usage.get("outputTokens", 0)
        return [usage_event(record, thread_id, turn_id, usage, "codex")]
    return []


def _codex_tool_result(record: OtelRecord, thread_id: str, turn_id: str | None, call_id: str) -> CaptureEvent:
    attrs = record.attributes
    raw = str_of(attrs.get("output"))
    output, exit_code = unwrap_exec_output(raw) if raw is not None else (None, None)
    success = bool_of(attrs.get("success"))
    duration = int_of(attrs.get("duration_ms"))
    done = ms(record.time_ns)
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
    extra: dict[str, Any] = {"toolName": str_of(attrs.get("tool_name"))}
    if duration is not None:
        extra["durationMs"] = duration
    truncated = bool_of(attrs.get("output_truncated"))
    if truncated is not None:
        extra["outputTruncated"] = truncated
    key = item_content_key(thread_id, call_id)
    return event("item_completed", record, key, thread_id, turn_id, call_id, "codex", item=fields, usage=extra)
