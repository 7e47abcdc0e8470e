"""The host-facing shapes the code builds as plain dicts, written down as msgspec types.

Notifications and a few results (captured threads, the dedup log, approvals,
held live events) are assembled as dicts where they are made, for speed or
because they come straight from SQLite rows. These types say what those dicts
hold, so ``make schemas`` can publish JSON Schemas and TypeScript for them.
They are checked against the real thing: tests/host/test_schemas.py decodes
every host-bound message of the recorded transcripts (fixtures/transcripts)
with them and compares their field names with what the emitters build.

Shapes only grow: a host must ignore fields it does not know, so nothing here
forbids unknown fields.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from bridge.receiver.status import ReceiverStatus
from bridge.reliability.history import TransitionWire
from bridge.sidecar.status import CodexAppServerStatus


class _Shape(msgspec.Struct, rename="camel", kw_only=True):
    pass


# A field the bridge leaves out unless it is true (the TypeScript makes it optional; others are always sent).
Observed = Annotated[
    bool,
    msgspec.Meta(description="attach mode: present (true) only for requests the user's own client answers",
                 extra_json_schema={"x-optional": True}),
]  # fmt: skip


# ---------------------------------------------------------------- session:live:event payloads


class SessionDelta(_Shape, tag_field="type", tag="SessionDelta"):
    """One accepted (or replacing) capture event, sent after it is committed."""

    thread_id: str
    turn_id: str | None
    item_id: str | None
    event_type: str  # codex's method, e.g. item/agentMessage/delta
    source: Literal["app_server_stream", "otel"]
    sequence_id: int  # the delta's ordinal within its item; 0 for non-delta events
    received_at_iso: str | None
    emitted_at_ms: int | None  # codex's own timestamp, when it gave one
    key: str  # the dedup key
    payload: Any  # codex's params, redacted


class ApprovalRequest(_Shape, tag_field="type", tag="ApprovalRequest"):
    """codex asks the user; answer with codex_app_server_submit_approval before timeoutMs."""

    request_id: str
    kind: Literal["commandExecution", "fileChange", "permissions"]
    thread_id: str
    turn_id: str | None
    item_id: str | None
    command: str | None  # null for file changes and permissions
    options: list[str]
    timeout_ms: int
    decision_token: str | None  # null for observed requests (attach mode)
    observed: Observed = False


class ApprovalResult(_Shape, tag_field="type", tag="ApprovalResult"):
    """How an approval ended: by the user (submit_approval) or the system (timeout, codex, restart)."""

    request_id: str
    thread_id: str
    approved: bool | None  # null when observed (attach mode)
    decision: str | None
    decided_at_iso: str
    decided_by: Literal["user", "system"]
    reason: str | None
    observed: Observed = False


class ParserValidationError(_Shape, tag_field="type", tag="ParserValidationError"):
    """A codex notification that did not fit its schema; it was not captured."""

    kind: Literal["schema_mismatch", "missing_fields", "protocol_violation"]
    raw_preview: str  # at most 256 characters, redacted
    reason: str
    occurred_at_iso: str


# The same payloads as notification params: each carries the connection-wide seq.
class SessionDeltaEvent(SessionDelta, tag="SessionDelta", kw_only=True):
    seq: int


class ApprovalRequestEvent(ApprovalRequest, tag="ApprovalRequest", kw_only=True):
    seq: int


class ApprovalResultEvent(ApprovalResult, tag="ApprovalResult", kw_only=True):
    seq: int


class ParserValidationErrorEvent(ParserValidationError, tag="ParserValidationError", kw_only=True):
    seq: int


LiveEvent = SessionDeltaEvent | ApprovalRequestEvent | ApprovalResultEvent | ParserValidationErrorEvent


class CodexAppServerStatusEvent(CodexAppServerStatus, kw_only=True):
    seq: int


class CaptureReliabilityTransitionEvent(TransitionWire, kw_only=True):
    seq: int


class OtelReceiverStatusEvent(ReceiverStatus, kw_only=True):
    seq: int


# method -> params
NOTIFICATIONS: dict[str, Any] = {
    "codex-app-server-status": CodexAppServerStatusEvent,
    "capture-reliability-transition": CaptureReliabilityTransitionEvent,
    "otel-receiver-status": OtelReceiverStatusEvent,
    "session:live:event": LiveEvent,
}


# ---------------------------------------------------------------- get_live_events: whole messages


class _Held(msgspec.Struct, kw_only=True, tag_field="method"):
    jsonrpc: Literal["2.0"] = "2.0"


class HeldCodexAppServerStatus(_Held, tag="codex-app-server-status"):
    params: CodexAppServerStatusEvent


class HeldCaptureReliabilityTransition(_Held, tag="capture-reliability-transition"):
    params: CaptureReliabilityTransitionEvent


class HeldOtelReceiverStatus(_Held, tag="otel-receiver-status"):
    params: OtelReceiverStatusEvent


class HeldSessionLiveEvent(_Held, tag="session:live:event"):
    params: LiveEvent


HeldNotification = (
    HeldCodexAppServerStatus | HeldCaptureReliabilityTransition | HeldOtelReceiverStatus | HeldSessionLiveEvent
)

