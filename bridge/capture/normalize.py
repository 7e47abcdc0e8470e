"""codex stream notifications → :class:`CaptureEvent` (pure, no I/O).

Only thread-scoped notifications become capture events; account, config and
rate-limit notifications belong to the supervisor. Text that is stored or
shown is redacted here, once.
"""

from __future__ import annotations

from typing import Any

import msgspec

from bridge.capture import codex_events as ce
from bridge.capture.events import STREAM, CaptureEvent, ItemFields, Kind
from bridge.capture.ledger import DELTA_METHODS, delta_key, event_key, item_content_key, lifecycle_key, text_hash
from bridge.redact import redact_text

NOT_CAPTURED = frozenset(
    {
        "account/updated",
        "account/login/completed",
        "account/rateLimits/updated",
        "configWarning",
        "deprecationNotice",
        "remoteControl/status/changed",
        "mcpServer/startupStatus/updated",
    }
)

# The deltas' decoders are made at import (the capture's hot loop decodes with them); the others on
# their first notification: making all ~30 costs ~3 ms of the bridge's start, before its first status.
DELTA_DECODERS: dict[str, msgspec.json.Decoder[Any]] = {
    method: msgspec.json.Decoder(ce.NOTIFICATIONS[method]) for method in DELTA_METHODS
}
_DECODERS: dict[str, msgspec.json.Decoder[Any]] = {}  # the other notifications', as they first come
_THREAD_ID = msgspec.json.Decoder(ce.ThreadClosed)  # any params with a threadId


class NormalizeError(ValueError):
    """A known notification whose params do not fit (a ParserValidationError)."""

    def __init__(self, method: str, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.method = method
        self.kind = kind
        self.reason = reason


def _decoder(method: str) -> msgspec.json.Decoder[Any] | None:
    """A known non-delta notification's params decoder, made on its first use; None for an unknown method."""
    decoder = _DECODERS.get(method)
    if decoder is None:
        tp = ce.NOTIFICATIONS.get(method)
        if tp is not None:
            decoder = _DECODERS[method] = msgspec.json.Decoder(tp)
    return decoder


def _ms(seconds: int | None) -> int | None:
    return None if seconds is None else seconds * 1000


def _item_text(item: ce.ThreadItem) -> str | None:
    if item.text is not None:
        return item.text
    if item.type == "userMessage" and item.content:
        parts = [c.get("text", "") for c in item.content if isinstance(c, dict) and c.get("type") == "text"]
        return "\n".join(parts) if parts else None
    if item.type == "reasoning":
        chunks = list(item.summary or []) or [c for c in (item.content or []) if isinstance(c, str)]
        return "\n".join(chunks) if chunks else None
    return None


def item_fields(item: ce.ThreadItem, default_status: str | None) -> ItemFields:
    text = _item_text(item)
    output = item.aggregated_output
    if output is None and item.changes:
        output = "\n".join(c.diff or "" for c in item.changes) or None
    return ItemFields(
        type=item.type,
        status=item.status or default_status,
        text=redact_text(text) if text else text,
        output=redact_text(output) if output else output,
        exit_code=item.exit_code,
        command=redact_text(item.command) if item.command else item.command,
        started_at_ms=item.started_at_ms,
        completed_at_ms=item.completed_at_ms,
    )


def _turn_error(error: ce.TurnError | None) -> str | None:
    return redact_text(error.message) if error is not None else None


def _invalid(method: str, exc: Exception) -> NormalizeError:
    """The parser error of a known notification whose params did not decode."""
    if isinstance(exc, msgspec.ValidationError):
        text = str(exc)
        kind = "missing_fields" if text.startswith("Object missing required field") else "schema_mismatch"
        return NormalizeError(method, kind, text)
    return NormalizeError(method, "protocol_violation", str(exc))  # msgspec reports invalid UTF-8 as UnicodeDecodeError


def normalize(method: str, params: bytes | msgspec.Raw, emitted_at_ms: int | None) -> CaptureEvent | None:
    """The capture event of one notification, or None when it is not thread content.

    A delta keeps no copy of its params (``raw_params`` stays empty): its live payload is built
    from its fields, and nothing else reads them, so the stream's bulk is decoded straight from
    the frame's bytes.
    """
    delta_decoder = DELTA_DECODERS.get(method)
    if delta_decoder is not None:  # nine frames in ten of a stream: straight through
        try:
            d = delta_decoder.decode(params)
        except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError) as exc:
            raise _invalid(method, exc) from None
        text, thread_id, item_id = d.delta, d.thread_id, d.item_id
        digest = text_hash(text)
        return CaptureEvent(
            "delta", method, STREAM, delta_key(method, thread_id, item_id, emitted_at_ms, digest), thread_id,
            d.turn_id, item_id, emitted_at_ms, redact_text(text), digest,
        )  # fmt: skip
    if method in NOT_CAPTURED:
        return None
    params = bytes(params)
    decoder = _decoder(method)
    try:
        if decoder is None:
            ref = _THREAD_ID.decode(params) if params else None
            if ref is None:
                return None
            key = event_key(method, ref.thread_id, emitted_at_ms, params)
            return CaptureEvent(
                "other", method, STREAM, key, ref.thread_id, emitted_at_ms=emitted_at_ms, raw_params=params
            )
        p = decoder.decode(params)
    except msgspec.ValidationError as exc:
        if decoder is None:
            return None  # an unknown notification without a thread: not capture content
        raise _invalid(method, exc) from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise _invalid(method, exc) from None

    if isinstance(p, ce.ItemCompleted):
        return CaptureEvent(
            "item_completed",
            method,
            STREAM,
            item_content_key(p.thread_id, p.item.id),
            p.thread_id,
            p.turn_id,
            p.item.id,
            emitted_at_ms,
            item=item_fields(p.item, "completed"),
            raw_params=params,
        )
    if isinstance(p, ce.ItemStarted):
        return CaptureEvent(
            "item_started",
            method,
            STREAM,
            lifecycle_key(method, p.thread_id, p.item.id),
            p.thread_id,
            p.turn_id,
            p.item.id,
            emitted_at_ms,
            item=item_fields(p.item, "inProgress"),
            raw_params=params,
        )
    if isinstance(p, ce.TurnStarted | ce.TurnCompleted):
        turn_kind: Kind = "turn_started" if isinstance(p, ce.TurnStarted) else "turn_completed"
        turn = p.turn
        return CaptureEvent(
            turn_kind,
            method,
            STREAM,
            lifecycle_key(method, p.thread_id, turn.id),
            p.thread_id,
            turn.id,
            None,
            emitted_at_ms,
            turn_status=turn.status,
            turn_error=_turn_error(turn.error),
            raw_params=params,
        )
    if isinstance(p, ce.ThreadStarted):
        t = p.thread
        return CaptureEvent(
            "thread",
            method,
            STREAM,
            lifecycle_key(method, t.id),
            t.id,
            emitted_at_ms=emitted_at_ms,
            title=redact_text(t.name or t.preview or "") or None,
            cwd=t.cwd,
            raw_params=params,
        )
    if isinstance(p, ce.ThreadTokenUsageUpdated):
        usage = msgspec.to_builtins(p.token_usage)
        return CaptureEvent(
            "usage",
            method,
            STREAM,
            event_key(method, p.thread_id, emitted_at_ms, params),
            p.thread_id,
            p.turn_id,
            emitted_at_ms=emitted_at_ms,
            usage=usage,
            raw_params=params,
        )
    if isinstance(p, ce.ErrorNotification):
        return CaptureEvent(
            "error",
            method,
            STREAM,
            event_key(method, p.thread_id, emitted_at_ms, params),
            p.thread_id,
            p.turn_id,
            emitted_at_ms=emitted_at_ms,
            turn_error=None if p.will_retry else _turn_error(p.error),
            raw_params=params,
        )
    thread_id = getattr(p, "thread_id", None)
    if not isinstance(thread_id, str):
        return None
    return CaptureEvent(
        "other",
        method,
        STREAM,
        event_key(method, thread_id, emitted_at_ms, params),
        thread_id,
        getattr(p, "turn_id", None),
        getattr(p, "item_id", None),
        emitted_at_ms,
        raw_params=params,
    )
