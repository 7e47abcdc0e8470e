"""A thread as the sidecar reports it (``thread/read`` + ``thread/turns/list``) → capture events.

Used after a sidecar restart and on demand: the events carry the same keys as
the live stream's, so what was already captured is a ``duplicate`` and only
the gaps are filled.
"""

from __future__ import annotations

from typing import Any

import msgspec

from bridge.capture import codex_events as ce
from bridge.capture.events import STREAM, CaptureEvent
from bridge.capture.ledger import item_content_key, lifecycle_key
from bridge.capture.normalize import _turn_error, item_fields
from bridge.redact import redact_text


class ThreadRead(msgspec.Struct, rename="camel"):
    thread: ce.Thread


class TurnsPage(msgspec.Struct, rename="camel"):
    data: list[ce.Turn]
    next_cursor: str | None = None


thread_read_decoder = msgspec.json.Decoder(ThreadRead)
turns_page_decoder = msgspec.json.Decoder(TurnsPage)


def snapshot_events(thread: ce.Thread, turns: list[ce.Turn]) -> list[CaptureEvent]:
    """Events reproducing what the snapshot shows, keyed like the live stream."""
    tid = thread.id
    created = thread.created_at * 1000 if thread.created_at else None
    events = [
        CaptureEvent(
            "thread",
            "thread/started",
            STREAM,
            lifecycle_key("thread/started", tid),
            tid,
            emitted_at_ms=created,
            title=redact_text(thread.name or thread.preview or "") or None,
            cwd=thread.cwd,
        )
    ]
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
                events.append(
                    CaptureEvent("item_completed", "item/completed", STREAM, item_content_key(tid, item.id), tid,
                                 turn.id, item.id, item.completed_at_ms, item=item_fields(item, "completed"))
                )  # fmt: skip
            else:
                events.append(
                    CaptureEvent("item_started", "item/started", STREAM, lifecycle_key("item/started", tid, item.id),
                                 tid, turn.id, item.id, item.started_at_ms, item=item_fields(item, "inProgress"))
                )  # fmt: skip
        if finished:
            completed = turn.completed_at * 1000 if turn.completed_at else None
            events.append(
                CaptureEvent("turn_completed", "turn/completed", STREAM, lifecycle_key("turn/completed", tid, turn.id),
                             tid, turn.id, emitted_at_ms=completed, turn_status=turn.status,
                             turn_error=_turn_error(turn.error))
            )  # fmt: skip
    return events


def snapshot_view(thread: ce.Thread, turns: list[ce.Turn]) -> dict[str, Any]:
    """The sidecar's own view, returned to the host (redacted)."""
    from bridge.redact import redact

    view: dict[str, Any] = redact(msgspec.to_builtins(thread))
    view["turns"] = [redact(msgspec.to_builtins(t)) for t in turns]
    return view
