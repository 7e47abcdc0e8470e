"""Captured threads and the dedup decision log (docs/protocol.md §3.5)."""

from __future__ import annotations

from typing import Annotated

import anyio
import msgspec

from bridge import errors
from bridge.capture.reads import CapturedThread, DedupDecision, ThreadSummary
from bridge.capture.store import CaptureStore
from bridge.clock import iso_ms, parse_iso_ms
from bridge.errors import BridgeError
from bridge.host.app import App
from bridge.host.registry import Params, Result, WorkDoneParams, command
from bridge.host.request import current

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


class RetentionParams(WorkDoneParams):
    pass


class RetentionRun(Result):
    """What one retention pass removed, and the capture-time cutoff it applied."""

    retention_days: int
    cutoff_iso: str
    removed_threads: int


def capture_store(app: App) -> CaptureStore:
    if app.capture is None:
        raise BridgeError(errors.INTERNAL_ERROR, "The capture store is not available; see the bridge log.")
    return app.capture.store


def parse_iso(field: str, value: str, method: str) -> int:
    """Epoch ms of a host-given ISO-8601 time (UTC when it names no offset), or -32602 naming ``field``."""
    ms = parse_iso_ms(value)
    if ms is None:
        raise errors.invalid_params(method, field, "is not an ISO-8601 timestamp")
    return ms


@command("list_captured_threads", params=ListThreadsParams, result=list[ThreadSummary])
async def list_captured_threads(app: App, params: ListThreadsParams) -> list[ThreadSummary]:
    """Captured threads, newest ``updatedAtIso`` first; ``sinceIso`` filters on it."""
    since = parse_iso("sinceIso", params.since_iso, "list_captured_threads") if params.since_iso else None
    return capture_store(app).list_threads(params.limit, since)


@command("get_captured_thread", params=ThreadParams, result=CapturedThread)
async def get_captured_thread(app: App, params: ThreadParams) -> CapturedThread:
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


@command("get_codex_stream_dedupe_log", params=DedupeLogParams, result=list[DedupDecision])
async def get_codex_stream_dedupe_log(app: App, params: DedupeLogParams) -> list[DedupDecision]:
    """The newest dedup decisions first: accepted, duplicate, replaced or dropped, with sources."""
    return capture_store(app).decision_log(params.limit)


@command("run_capture_retention", params=RetentionParams, result=RetentionRun)
async def run_capture_retention(app: App, params: RetentionParams) -> RetentionRun:
    """Apply config ``retentionDays`` now instead of at the next hourly pass (docs/protocol.md §3.5).

    Cancellable until the deletion starts; from then on it completes (one
    transaction for the captured content, then the history that ages with it).
    """
    if app.capture is None:
        raise BridgeError(errors.INTERNAL_ERROR, "The capture store is not available; see the bridge log.")
    capture = app.capture
    request = current()
    days = app.config.current.retention_days
    cutoff = capture.retention_cutoff_ms()
    request.begin("Capture retention", f"content captured before {iso_ms(cutoff)}")
    try:
        request.check()
        request.report("removing captured content", 10, cancellable=False)
        percent = iter((70, 90))

        def step(message: str, removed: int) -> None:
            request.report(f"{message} ({removed} threads)", next(percent, 90))

        removed = await anyio.to_thread.run_sync(capture.enforce_retention, cutoff, step)
    except BridgeError as exc:
        request.end(exc.message)
        raise
    except BaseException:
        request.end("stopped by an error; the bridge log has the details")
        raise
    request.end(f"captured threads removed: {removed}")
    return RetentionRun(retention_days=days, cutoff_iso=iso_ms(cutoff), removed_threads=removed)
