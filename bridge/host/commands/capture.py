"""Captured threads and the dedup decision log (docs/protocol.md §3.5)."""

from __future__ import annotations

import calendar
from typing import Annotated, Any

import msgspec

from bridge import errors
from bridge.capture.store import CaptureStore
from bridge.errors import BridgeError
from bridge.host.app import App
from bridge.host.registry import Params, Result, command

Limit = Annotated[int, msgspec.Meta(ge=1, le=1000)]


class ListThreadsParams(Params):
    limit: Limit = 50
    since_iso: str | None = None


class ThreadParams(Params):
    thread_id: Annotated[str, msgspec.Meta(min_length=1)]


class DedupeLogParams(Params):
    limit: Limit = 50


class Deleted(Result):
    deleted: bool


def capture_store(app: App) -> CaptureStore:
    if app.capture is None:
        raise BridgeError(errors.INTERNAL_ERROR, "The capture store is not available; see the bridge log.")
    return app.capture.store


def parse_iso(field: str, value: str, method: str) -> int:
    text = value.strip().replace("Z", "+00:00")
    try:
        from datetime import datetime

        moment = datetime.fromisoformat(text)
    except ValueError:
        raise errors.invalid_params(method, field, "is not an ISO-8601 timestamp") from None
    if moment.tzinfo is None:
        return int(calendar.timegm(moment.timetuple()) * 1000)
    return int(moment.timestamp() * 1000)


@command("list_captured_threads", params=ListThreadsParams, result=list[dict[str, Any]])
async def list_captured_threads(app: App, params: ListThreadsParams) -> list[dict[str, Any]]:
    """Captured threads, newest ``updatedAtIso`` first; ``sinceIso`` filters on it."""
    since = parse_iso("sinceIso", params.since_iso, "list_captured_threads") if params.since_iso else None
    return capture_store(app).list_threads(params.limit, since)


@command("get_captured_thread", params=ThreadParams, result=dict[str, Any])
async def get_captured_thread(app: App, params: ThreadParams) -> dict[str, Any]:
    """One captured thread with its turns and items (docs/protocol.md §4.5)."""
    thread = capture_store(app).get_thread(params.thread_id)
    if thread is None:
        raise BridgeError(
            errors.NOT_FOUND,
            f"No captured thread {params.thread_id}; list_captured_threads shows what is held.",
            reason="not_found",
        )
    return thread


@command("delete_captured_thread", params=ThreadParams, result=Deleted)
async def delete_captured_thread(app: App, params: ThreadParams) -> Deleted:
    """Remove a captured thread with its turns, items and deltas (the user's data)."""
    return Deleted(deleted=capture_store(app).delete_thread(params.thread_id))


@command("get_codex_stream_dedupe_log", params=DedupeLogParams, result=list[dict[str, Any]])
async def get_codex_stream_dedupe_log(app: App, params: DedupeLogParams) -> list[dict[str, Any]]:
    """The newest dedup decisions first: accepted, duplicate, replaced or dropped, with sources."""
    return capture_store(app).decision_log(params.limit)
