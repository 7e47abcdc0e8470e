"""A thread as the sidecar reports it (``thread/read`` + ``thread/turns/list``) → capture events.

Used after a sidecar restart and on demand: the events carry the same keys as
the live stream's, so what was already captured is a ``duplicate`` and only
the gaps are filled.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence

import msgspec

from bridge.capture import codex_events as ce
from bridge.capture.events import STREAM, CaptureEvent
from bridge.capture.ledger import item_content_key, lifecycle_key
from bridge.capture.normalize import _turn_error, item_fields
from bridge.redact import needs_redaction, redact, redact_text


class ThreadRead(msgspec.Struct, rename="camel"):
    thread: ce.Thread


class TurnsPage(msgspec.Struct, rename="camel"):
    data: list[ce.Turn]
    next_cursor: str | None = None


thread_read_decoder = msgspec.json.Decoder(ThreadRead)
turns_page_decoder = msgspec.json.Decoder(TurnsPage)
_encode = msgspec.json.encode


def thread_event(thread: ce.Thread) -> CaptureEvent:
    """The ``thread/started`` event a snapshot reproduces, keyed like the live stream's."""
    return CaptureEvent(
        "thread",
        "thread/started",
        STREAM,
        lifecycle_key("thread/started", thread.id),
        thread.id,
        emitted_at_ms=thread.created_at * 1000 if thread.created_at else None,
        title=redact_text(thread.name or thread.preview or "") or None,
        cwd=thread.cwd,
    )


def turn_events(tid: str, turns: Sequence[ce.Turn]) -> list[CaptureEvent]:
    """The events of ``turns`` of thread ``tid`` (in order), keyed like the live stream's.

    An item's event carries the params codex's own ``item/started`` / ``item/completed`` would (its
    ``raw_params``), so the host's live event of a back-filled item holds the item, as a streamed one does.
    """
    events: list[CaptureEvent] = []
    for turn in turns:
        started = turn.started_at * 1000 if turn.started_at else None
        events.append(
            CaptureEvent("turn_started", "turn/started", STREAM, lifecycle_key("turn/started", tid, turn.id), tid,
                         turn.id, emitted_at_ms=started, turn_status="inProgress")
        )  # fmt: skip
        finished = turn.status != "inProgress"
        for item in turn.items:
            done = finished or (item.status is not None and item.status != "inProgress")
            if done:
                params = _encode(ce.ItemCompleted(tid, turn.id, item, item.completed_at_ms))
                events.append(
                    CaptureEvent("item_completed", "item/completed", STREAM, item_content_key(tid, item.id), tid,
                                 turn.id, item.id, item.completed_at_ms, item=item_fields(item, "completed"),
                                 raw_params=params)
                )  # fmt: skip
            else:
                params = _encode(ce.ItemStarted(tid, turn.id, item, item.started_at_ms))
                events.append(
                    CaptureEvent("item_started", "item/started", STREAM, lifecycle_key("item/started", tid, item.id),
                                 tid, turn.id, item.id, item.started_at_ms, item=item_fields(item, "inProgress"),
                                 raw_params=params)
                )  # fmt: skip
        if finished:
            completed = turn.completed_at * 1000 if turn.completed_at else None
            events.append(
                CaptureEvent("turn_completed", "turn/completed", STREAM, lifecycle_key("turn/completed", tid, turn.id),
                             tid, turn.id, emitted_at_ms=completed, turn_status=turn.status,
                             turn_error=_turn_error(turn.error))
            )  # fmt: skip
    return events


def view_of(thread: ce.Thread, turns: Sequence[ce.Turn]) -> Generator[int, None, bytes]:
    """The sidecar's own view returned to the host, redacted, as JSON: the thread's fields and its ``turns``.

    The same value as ``redact(to_builtins(thread))`` with ``turns`` set to each turn so
    redacted, built a turn at a time: a part with nothing to mask is encoded only, never
    walked. Yields the bytes each step produced, for a caller that runs it in slices.
    """
    head = _clean(thread)
    yield len(head)
    parts = []
    for turn in turns:
        part = _clean(turn)
        parts.append(part)
        yield len(part)
    sep = b"," if len(head) > 2 else b""
    return b"".join((head[:-1], sep, b'"turns":[', b",".join(parts), b"]}"))


def _clean(value: msgspec.Struct) -> bytes:
    """``value`` as redacted JSON (walked by ``redact`` only when its bytes hold something it could mask)."""
    raw = _encode(value)
    return raw if not needs_redaction(raw) else _encode(redact(msgspec.to_builtins(value)))
