"""The stream's live events, built as bytes: the hot path's ``session:live:event`` without a struct each.

Every accepted capture event becomes one ``session:live:event`` notification
(docs/protocol.md §5). Building a :class:`~bridge.host.schemas_types.SessionDelta`-shaped
struct and encoding it cost ~3 µs an event on the capture thread, the busiest
thread of the bridge. Here the fields that a run of events share (thread, turn,
item, method, source, and a delta payload's head) are encoded once per run,
and each event adds only its own values, its ``seq`` among them: the messages are
built under the notifier's lock (:meth:`bridge.host.notify.Notifier.emit_built`), so
each is formatted once. The bytes are the same as msgspec's encoding of the struct,
field for field (``tests/capture/test_live.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import count
from typing import Any

import msgspec

from bridge.capture.delta_group import AppliedDeltas
from bridge.capture.events import STREAM, CaptureEvent
from bridge.capture.rows import Applied
from bridge.redact import needs_redaction, redact

_enc = msgspec.json.Encoder().encode
_decode = msgspec.json.decode

METHOD = "session:live:event"
_NOTHING: Any = object()  # differs from every id, None included
# prefix, sequenceId, receivedAtIso + emittedAtMs's name, emittedAtMs, key, the payload, seq
_DELTA = b'%s%d%s%s,"key":%s,"payload":%s%s},"seq":%d}}'
_DELTA_AT = b'%s%d%s%d,"key":%s,"payload":%s%s},"seq":%d}}'  # the same, emittedAtMs formatted in place
_OTHER = b'%s%d%s%s,"key":%s,"payload":%s,"seq":%d}}'
_STREAM = _enc(STREAM)
_HEAD = b'{"jsonrpc":"2.0","method":"session:live:event","params":{"type":"SessionDelta","threadId":'


def live_messages(applied: Sequence[Applied | AppliedDeltas], received_at_iso: str, first_seq: int) -> list[bytes]:
    """Each accepted event's notification, numbered from ``first_seq`` (:meth:`Notifier.emit_built`)."""
    out: list[bytes] = []
    seqs = count(first_seq)
    append = out.append
    received = b',"receivedAtIso":' + _enc(received_at_iso) + b',"emittedAtMs":'
    thread = turn = item = method = source = _NOTHING  # what the current prefix was built for
    prefix = delta_head = b""
    for entry in applied:
        if isinstance(entry, AppliedDeltas):  # a run of the stream's deltas: one prefix, then only their own values
            group = entry.group
            thread = turn = item = method = source = _NOTHING
            ids = _enc(group.thread_id) + b',"turnId":' + _enc(group.turn_id) + b',"itemId":' + _enc(group.item_id)
            head = _HEAD + ids + b',"eventType":' + _enc(group.method) + b',"source":' + _STREAM + b',"sequenceId":'
            payload_head = b'{"threadId":' + ids + b',"delta":'
            taken = entry.count
            for ordinal, at, key, text, seq in zip(  # seqs last: zip stops before it takes a number
                range(entry.first, entry.first + taken), group.emitted[:taken], group.keys[:taken],
                group.texts[:taken], seqs, strict=False,
            ):  # fmt: skip
                if at is None:
                    append(_DELTA % (head, ordinal, received, b"null", _enc(key), payload_head, _enc(text), seq))
                else:
                    append(_DELTA_AT % (head, ordinal, received, at, _enc(key), payload_head, _enc(text), seq))
            continue
        ev = entry.event
        if ev.item_id != item or ev.method != method or ev.thread_id != thread or ev.turn_id != turn or (
            ev.source != source
        ):
            thread, turn, item, method, source = ev.thread_id, ev.turn_id, ev.item_id, ev.method, ev.source
            ids = _enc(thread) + b',"turnId":' + _enc(turn) + b',"itemId":' + _enc(item)
            prefix = _HEAD + ids + b',"eventType":' + _enc(method) + b',"source":' + _enc(source) + b',"sequenceId":'
            delta_head = b'{"threadId":' + ids + b',"delta":'
        emitted = ev.emitted_at_ms
        if ev.payload is None and ev.kind == "delta":  # one format for the whole message: the hot path
            append(_DELTA % (prefix, entry.sequence_id, received, b"null" if emitted is None else b"%d" % emitted,
                             _enc(ev.key), delta_head, _enc(ev.delta), next(seqs)))  # fmt: skip
        else:
            append(_OTHER % (prefix, entry.sequence_id, received, b"null" if emitted is None else b"%d" % emitted,
                             _enc(ev.key), _enc(payload_of(ev)), next(seqs)))  # fmt: skip
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
