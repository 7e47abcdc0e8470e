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
redacted by the provider modules, as the stream's normaliser does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from msgspec.structs import replace

from bridge.capture.events import CaptureEvent
from bridge.receiver.mapping_claude import claude_events
from bridge.receiver.mapping_codex import codex_events, is_token_count
from bridge.receiver.mapping_events import decode_json, turn_span_events
from bridge.receiver.records import CLAUDE, CODEX, OtelRecord

__all__ = [
    "is_token_count",
    "learns",
    "lends_trace",
    "needs_turn",
    "order_ns",
    "record_from_row",
    "relevant",
    "to_events",
]

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


def for_baseline(record: OtelRecord) -> OtelRecord | None:
    """What the baseline feeder needs of a stored record: all but the resource of a relevant one (no
    mapping reads it: it is a third of a codex record's bytes), the ids of one that only tells its
    trace's thread and turn (:func:`learns`), nothing of the rest.

    The decoder process feeds the feeder only these, so the records it holds back for their turn (up
    to ``baseline.MAX_PENDING``) keep a few fields each, not whole records. The trimmed copy keeps every
    scalar field.
    """
    if relevant(record):
        return replace(record, resource={}) if record.resource else record
    if learns(record) is None:
        return None
    return replace(record, body=None, attributes={}, resource={}, detail={})


# -- records → events ---------------------------------------------------------------------------


def to_events(record: OtelRecord, conversation_id: str, turn_id: str | None) -> list[CaptureEvent]:
    """The capture events of one relevant record, in the thread ``conversation_id`` and turn ``turn_id``."""
    if record.provider == CODEX:
        if record.signal == "span":
            return turn_span_events(record, conversation_id, turn_id, "codex")
        return codex_events(record, conversation_id, turn_id)
    if record.provider == CLAUDE:
        if record.signal == "span":
            return turn_span_events(record, conversation_id, turn_id, "claude_code")
        return claude_events(record, conversation_id, turn_id)
    return []


# -- stored rows (fixtures, rebuilding from otel_records) ---------------------------------------


def record_from_row(row: Mapping[str, Any]) -> OtelRecord:
    """An :class:`OtelRecord` from an ``otel_records`` row (as a name → value mapping)."""

    def js(value: Any, default: Any) -> Any:
        if value is None:
            return default
        return decode_json(value) if isinstance(value, str | bytes) else value

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
