"""The capture events the baseline's records become, shared by the codex and Claude Code mappings (pure).

Attribute readers that tolerate OTEL's loose typing (numbers as strings,
booleans as ``"true"``), and one builder per kind of event both providers
emit: thread, prompt item, agent message, tool decision, usage and the turn
span's start and end. Texts are redacted here, as the stream's normaliser does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from bridge.capture.events import OTEL, CaptureEvent, ItemFields
from bridge.capture.ledger import item_content_key, lifecycle_key
from bridge.capture.rows import prompt_item_id
from bridge.receiver.records import OtelRecord
from bridge.redact import redact_text

DECLINED = frozenset({"denied", "abort", "reject", "rejected", "declined", "cancel"})
decode_json = msgspec.json.decode


# -- reading attributes -----------------------------------------------------------------------


def str_of(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)


def int_of(value: Any) -> int | None:
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


def float_of(value: Any) -> float | None:
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


def bool_of(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def ms(time_ns: int | None) -> int | None:
    return None if time_ns is None else time_ns // 1_000_000


def span_ms(record: OtelRecord, field: str) -> int | None:
    value = record.detail.get(field)
    return ms(value) if isinstance(value, int) and value > 0 else None


# -- building events ----------------------------------------------------------------------------


def event(
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
        at_ms if at_ms is not None else ms(record.time_ns),
        item=item,
        usage=usage,
        turn_status=turn_status,
        turn_error=turn_error,
        provider=provider,
        payload=payload,
    )


def thread_event(record: OtelRecord, thread_id: str, provider: str) -> CaptureEvent:
    return event("thread", record, lifecycle_key("thread/started", thread_id), thread_id, None, None, provider)


def prompt_event(record: OtelRecord, thread_id: str, turn_id: str | None, provider: str) -> CaptureEvent:
    # No id of its own: one per turn, joined by the store to the stream's userMessage of that turn.
    if turn_id is not None:
        item_id = prompt_item_id(turn_id)
    elif record.trace_id is not None:
        item_id = prompt_item_id(f"trace:{record.trace_id}")
    else:
        item_id = prompt_item_id(f"at:{record.time_ns}")
    text = str_of(record.attributes.get("prompt"))
    at = ms(record.time_ns)
    fields = ItemFields(
        type="userMessage",
        status="completed",
        text=redact_text(text) if text else None,
        started_at_ms=at,
        completed_at_ms=at,
    )
    key = item_content_key(thread_id, item_id)
    return event("item_completed", record, key, thread_id, turn_id, item_id, provider, item=fields)


def agent_message_event(
    record: OtelRecord, thread_id: str, turn_id: str | None, item_id: str, provider: str
) -> CaptureEvent:
    attrs = record.attributes
    text = str_of(attrs.get("response"))
    at = ms(record.time_ns)
    fields = ItemFields(
        type="agentMessage", status="completed", text=redact_text(text) if text else text, completed_at_ms=at
    )
    extra = {"truncated": True} if bool_of(attrs.get("response_truncated")) else None
    key = item_content_key(thread_id, item_id)
    return event("item_completed", record, key, thread_id, turn_id, item_id, provider, item=fields, usage=extra)


def tool_decision_event(
    record: OtelRecord, thread_id: str, turn_id: str | None, item_id: str, item_type: str, provider: str
) -> CaptureEvent:
    attrs = record.attributes
    decision = str_of(attrs.get("decision"))
    status = "declined" if decision and decision.lower() in DECLINED else "inProgress"
    fields = ItemFields(type=item_type, status=status, started_at_ms=ms(record.time_ns))
    extra = {"toolDecision": {"decision": decision, "source": str_of(attrs.get("source"))}}
    key = lifecycle_key("item/started", thread_id, item_id)
    return event("item_started", record, key, thread_id, turn_id, item_id, provider, item=fields, usage=extra)


def usage_event(
    record: OtelRecord, thread_id: str, turn_id: str | None, usage: dict[str, Any], provider: str
) -> CaptureEvent:
    return event("usage", record, f"otel|{record.dedup_key}", thread_id, turn_id, None, provider, usage=usage)


def turn_span_events(record: OtelRecord, thread_id: str, turn_id: str | None, provider: str) -> list[CaptureEvent]:
    if turn_id is None:
        return []
    status = record.detail.get("status")
    code = status.get("code") if isinstance(status, Mapping) else None
    message = status.get("message") if isinstance(status, Mapping) else None
    failed = code == 2
    events = []
    if provider == "codex":  # Claude's turn starts with its user_prompt, logged at once
        start = span_ms(record, "startTimeUnixNano")
        key = lifecycle_key("turn/started", thread_id, turn_id)
        events.append(event("turn_started", record, key, thread_id, turn_id, None, provider, at_ms=start))
    key = lifecycle_key("turn/completed", thread_id, turn_id)
    events.append(
        event(
            "turn_completed", record, key, thread_id, turn_id, None, provider,
            at_ms=span_ms(record, "endTimeUnixNano"),
            turn_status="failed" if failed else "completed",
            turn_error=redact_text(message) if failed and isinstance(message, str) else None,
        )
    )  # fmt: skip
    return events
