"""The stream's live events, built as bytes: the hot path's ``session:live:event`` without a struct each.

Every accepted capture event becomes one ``session:live:event`` notification
(docs/protocol.md §5). Building a :class:`~bridge.host.schemas_types.SessionDelta`-shaped
struct and encoding it cost ~3 µs an event on the capture thread, the busiest
thread of the bridge. Here the fields that a run of events share (thread, turn,
item, method, source, and a delta payload's head) are encoded once per run,
and each event adds only its own values. What comes out is the message
without its closing ``,"seq":N}}``: the notifier numbers it
(:meth:`bridge.host.notify.Notifier.emit_heads`). The bytes are the same as
msgspec's encoding of the struct, field for field (``tests/capture/test_live.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from bridge.capture.events import CaptureEvent
from bridge.capture.rows import Applied
from bridge.redact import needs_redaction, redact

_enc = msgspec.json.Encoder().encode
_decode = msgspec.json.decode

METHOD = "session:live:event"
_HEAD = b'{"jsonrpc":"2.0","method":"session:live:event","params":{"type":"SessionDelta","threadId":'


def live_heads(applied: Sequence[Applied], received_at_iso: str) -> list[bytes]:
    """Each accepted event's notification, up to (not including) its ``seq``."""
    out: list[bytes] = []
    append = out.append
    received = b',"receivedAtIso":' + _enc(received_at_iso) + b',"emittedAtMs":'
    last: tuple[str, str | None, str | None, str, str] | None = None
    prefix = delta_head = b""
    for entry in applied:
        ev = entry.event
        ident = (ev.thread_id, ev.turn_id, ev.item_id, ev.method, ev.source)
        if ident != last:
            last = ident
            ids = _enc(ev.thread_id) + b',"turnId":' + _enc(ev.turn_id) + b',"itemId":' + _enc(ev.item_id)
            prefix = _HEAD + ids + b',"eventType":' + _enc(ev.method) + b',"source":' + _enc(ev.source)
            prefix += b',"sequenceId":'
            delta_head = b'{"threadId":' + ids + b',"delta":'
        if ev.payload is None and ev.kind == "delta":
            payload = delta_head + _enc(ev.delta) + b"}"
        else:
            payload = _enc(payload_of(ev))
        emitted = b"null" if ev.emitted_at_ms is None else b"%d" % ev.emitted_at_ms
        append(b"".join((prefix, b"%d" % entry.sequence_id, received, emitted, b',"key":', _enc(ev.key),
                         b',"payload":', payload)))  # fmt: skip
    return out


def payload_of(ev: CaptureEvent) -> Any:
    """A non-delta event's params for the host, redacted; codex's own bytes when nothing needs masking."""
    if ev.payload is not None:
        return ev.payload
    if ev.kind == "delta":
        return {"threadId": ev.thread_id, "turnId": ev.turn_id, "itemId": ev.item_id, "delta": ev.delta}
    if not ev.raw_params:
        return None
    if not needs_redaction(ev.raw_params):
        return msgspec.Raw(ev.raw_params)  # nothing to mask: pass codex's bytes on untouched
    try:
        return redact(_decode(ev.raw_params))
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None
