"""The neutral capture event: what the stream and the OTEL baseline both become.

Every source (the codex stream, codex's and Claude Code's OTLP) is normalised
into :class:`CaptureEvent` before deduplication, so the ledger and the store
see one shape. ``key`` is the event's deterministic identity (see
:mod:`bridge.capture.ledger`).
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

Source = Literal["app_server_stream", "otel"]
STREAM: Source = "app_server_stream"
OTEL: Source = "otel"

Kind = Literal[
    "thread",  # a thread became known (title, cwd, created)
    "turn_started",
    "turn_completed",
    "item_started",
    "item_completed",  # the item's final content
    "delta",  # a streamed piece of an item
    "usage",  # token usage of a turn
    "error",  # an error notification (turn-level)
    "other",  # any other thread-scoped notification: emitted live, not stored as content
]


class ItemFields(msgspec.Struct, gc=False, omit_defaults=True):
    type: str | None = None
    status: str | None = None
    text: str | None = None
    output: str | None = None
    exit_code: int | None = None
    command: str | None = None
    started_at_ms: int | None = None
    completed_at_ms: int | None = None


class CaptureEvent(msgspec.Struct, gc=False):
    kind: Kind
    method: str
    source: Source
    key: str
    thread_id: str
    turn_id: str | None = None
    item_id: str | None = None
    emitted_at_ms: int | None = None
    # kind-specific content (already redacted)
    delta: str | None = None
    text_hash: str = ""  # deltas: the hash of their text (part of their identity)
    item: ItemFields | None = None
    turn_status: str | None = None
    turn_error: str | None = None
    usage: dict[str, Any] | None = None
    title: str | None = None
    cwd: str | None = None
    provider: str = "codex"
    # the notification's params for the host (redacted), built lazily by the pipeline
    payload: Any = None
    raw_params: bytes = b""
