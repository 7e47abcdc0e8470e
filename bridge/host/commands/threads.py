"""Driving and following codex threads through the bridge's sidecar (docs/protocol.md §3.5).

Params and results are codex's own: the known fields are checked here, the
rest is passed on, because codex grows them every release. Each command needs
a running, initialised sidecar authenticated in the required mode and the kill
switch off (``SidecarCommands.stream_client`` says which is missing).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Annotated, Any, TypeVar

import anyio
import msgspec

from bridge import errors
from bridge.capture import codex_events as ce
from bridge.capture.snapshot import thread_event, thread_read_decoder, turn_events, turns_page_decoder, view_of
from bridge.errors import BridgeError
from bridge.host.app import App
from bridge.host.codex_answers import (
    ThreadPage,
    ThreadResumed,
    ThreadSnapshot,
    ThreadStarted,
    TurnInterrupted,
    TurnStarted,
)
from bridge.host.registry import Forwarded, PassthroughParams, ProgressToken, WorkDoneParams, command
from bridge.host.request import Request, current
from bridge.redact import PIECE_BYTES, redacted_json
from bridge.sidecar.rpc import RpcClient

NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]
T = TypeVar("T")
SLICE_BYTES = 128 * 1024  # the work of one worker call (~1 ms), after which the event loop has its turn
SLICE_TURNS = 5  # turns a snapshot reconciles at a time (~100 items: a capture transaction of a few ms)


def refuse_in_attach(app: App, command: str) -> None:
    """The user's threads are the user's: an observer never starts or steers them (-32017)."""
    if app.sidecar is not None and app.sidecar.observer:
        raise BridgeError(
            errors.NOT_ALLOWED,
            f"{command} is not allowed while attached to the user's codex daemon as an observer; "
            "the user's own client drives its threads.",
            connection="attach",
        )


def stream_client(app: App) -> RpcClient:
    if app.sidecar is None:
        raise BridgeError(errors.SIDECAR_NOT_RUNNING, "The sidecar supervisor is not available; see the bridge log.")
    return app.sidecar.commands.stream_client()


async def forward(app: App, method: str, params: dict[str, Any]) -> msgspec.Raw | None:
    """codex's answer to ``method``, as the bytes the host gets (see :func:`pass_on`)."""
    return await pass_on(await stream_client(app).request_raw(method, params))


async def pass_on(raw: msgspec.Raw) -> msgspec.Raw | None:
    """codex's answer for the host, never decoded on the event loop.

    When nothing in it could need masking (the stream's test, ``needs_redaction``),
    codex's own bytes go out as they came, encoded by no one. Otherwise the parts
    that could are decoded and redacted, a piece at a time (``redacted_json``); an
    answer over :data:`PIECE_BYTES` (a resumed thread: megabytes) is worked on by a
    worker thread in slices, so the loop answers other commands meanwhile.
    """
    if not len(raw):
        return None
    data = bytes(raw)
    if len(data) <= PIECE_BYTES:
        return msgspec.Raw(_run_all(redacted_json(data)))
    return msgspec.Raw(await in_slices(redacted_json(data)))


async def in_slices(steps: Generator[int, None, T]) -> T:
    """Run ``steps`` on a worker thread, :data:`SLICE_BYTES` of work per call; the loop runs between calls."""
    while True:
        done, value = await anyio.to_thread.run_sync(_advance, steps, SLICE_BYTES)
        if done:
            return value  # type: ignore[return-value]


def _advance(steps: Generator[int, None, T], budget: int) -> tuple[bool, T | None]:
    spent = 0
    try:
        while spent < budget:
            spent += next(steps)
    except StopIteration as stop:
        return True, stop.value
    return False, None


def _run_all(steps: Generator[int, None, T]) -> T:
    while True:
        try:
            next(steps)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]


class ThreadStartParams(PassthroughParams):
    cwd: str | None = None
    approval_policy: str | None = None
    sandbox: str | dict[str, Any] | None = None
    model: str | None = None


class TurnStartParams(PassthroughParams):
    thread_id: NonEmpty
    input: list[dict[str, Any]] | None = None
    text: str | None = None


class TurnInterruptParams(PassthroughParams):
    thread_id: NonEmpty
    turn_id: NonEmpty


class ThreadListParams(PassthroughParams):
    limit: int | None = None
    cursor: str | None = None


class ThreadResumeParams(PassthroughParams):
    thread_id: NonEmpty
    work_done_token: ProgressToken | None = None  # ours (docs/protocol.md §1.1): never forwarded to codex


class SnapshotParams(WorkDoneParams):
    thread_id: NonEmpty


def _strip(raw: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in raw.items() if k not in names}


@command("codex_app_server_thread_start", params=ThreadStartParams, result=ThreadStarted)
async def thread_start(app: App, params: Forwarded[ThreadStartParams]) -> Any:
    """``thread/start`` on the bridge's sidecar; the thread's events are captured from then on."""
    refuse_in_attach(app, "codex_app_server_thread_start")
    return await forward(app, "thread/start", params.raw)


@command("codex_app_server_turn_start", params=TurnStartParams, result=TurnStarted)
async def turn_start(app: App, params: Forwarded[TurnStartParams]) -> Any:
    """``turn/start``; ``text`` is shorthand for a single text input."""
    refuse_in_attach(app, "codex_app_server_turn_start")
    known = params.known
    raw = _strip(params.raw, "text", "thread_id")
    raw["threadId"] = known.thread_id
    if known.input is None:
        if known.text is None:
            raise errors.invalid_params("codex_app_server_turn_start", "input", "is required (or give text)")
        raw["input"] = [{"type": "text", "text": known.text, "text_elements": []}]
    elif known.text is not None:
        raise errors.invalid_params("codex_app_server_turn_start", "text", "cannot be combined with input")
    return await forward(app, "turn/start", raw)


@command("codex_app_server_turn_interrupt", params=TurnInterruptParams, result=TurnInterrupted)
async def turn_interrupt(app: App, params: Forwarded[TurnInterruptParams]) -> Any:
    """``turn/interrupt`` of a running turn."""
    refuse_in_attach(app, "codex_app_server_turn_interrupt")
    raw = _strip(params.raw, "thread_id", "turn_id")
    raw.update(threadId=params.known.thread_id, turnId=params.known.turn_id)
    return await forward(app, "turn/interrupt", raw)


@command("codex_app_server_thread_list", params=ThreadListParams, result=ThreadPage)
async def thread_list(app: App, params: Forwarded[ThreadListParams]) -> Any:
    """``thread/list``: the sidecar's stored threads."""
    return await forward(app, "thread/list", params.raw)


@command("codex_app_server_thread_resume", params=ThreadResumeParams, result=ThreadResumed)
async def thread_resume(app: App, params: Forwarded[ThreadResumeParams]) -> Any:
    """``thread/resume``: subscribes the bridge to a thread's live events.

    Codex answers with the whole thread (the hydration of a long one is the
    slow part): with a ``workDoneToken`` the host sees it begin, codex answer
    and end. A cancel stops it only before codex is asked; once asked, the
    thread is subscribed and the resume completes.
    """
    request = current()
    thread_id = params.known.thread_id
    request.begin("Thread resume", thread_id)
    try:
        request.check()
        raw = _strip(params.raw, "thread_id", "work_done_token", "workDoneToken")
        raw["threadId"] = thread_id
        if app.sidecar is not None and app.sidecar.observer:
            # an observer only subscribes: no overrides that would change the user's thread
            raw = {"threadId": thread_id, "excludeTurns": True}
        request.report("asking codex for the thread", 10, cancellable=False)
        result = await forward(app, "thread/resume", raw)
        if app.sidecar is not None:
            app.sidecar.thread_followed(thread_id)
    except BridgeError as exc:
        request.end(exc.message)
        raise
    turns = await _turn_count(result)
    request.end("resumed" if turns is None else f"resumed; turns: {turns}")
    return result


class _TurnsOnly(msgspec.Struct):
    turns: list[msgspec.Raw] | None = None


class _ResumedOnly(msgspec.Struct):
    thread: _TurnsOnly | None = None


_resumed_turns = msgspec.json.Decoder(_ResumedOnly)


def turn_count(answer: msgspec.Raw | None) -> int | None:
    """How many turns codex's resume answer carries (``None`` when it carries none, e.g. ``excludeTurns``).

    Only the turn list's outline is parsed: each turn stays raw bytes.
    """
    if answer is None:
        return None
    try:
        turns = _resumed_turns.decode(answer).thread
    except (msgspec.ValidationError, msgspec.DecodeError):  # not the shape a resume answer has
        return None
    return None if turns is None or turns.turns is None else len(turns.turns)


async def _turn_count(answer: msgspec.Raw | None) -> int | None:
    if answer is not None and len(answer) > PIECE_BYTES:
        return await anyio.to_thread.run_sync(turn_count, answer)  # ~0.6 ms a megabyte, off the loop
    return turn_count(answer)


async def take_snapshot(app: App, thread_id: str, request: Request | None = None) -> msgspec.Raw:
    """Read a thread from the sidecar, reconcile it into the store, return the sidecar's view (as JSON).

    With a host ``request``: progress per page, and a cancel stops it before anything is stored.
    The decoding, the events and the view are built on worker threads, a slice at a time.
    """
    request = request or Request("")
    request.begin("Thread snapshot", thread_id)
    try:
        return await _snapshot(app, thread_id, request)
    finally:
        request.end()


async def _decoded(decoder: msgspec.json.Decoder[T], raw: msgspec.Raw) -> T:
    if len(raw) > PIECE_BYTES:
        return await anyio.to_thread.run_sync(decoder.decode, raw)
    return decoder.decode(raw)


async def _snapshot(app: App, thread_id: str, request: Request) -> msgspec.Raw:
    client = stream_client(app)
    read = await _decoded(thread_read_decoder, await client.request_raw("thread/read", {"threadId": thread_id}))
    request.report("thread read", 10)
    turns: list[ce.Turn] = []
    cursor: str | None = None
    for page_no in range(1000):  # bounded paging
        request.check()  # cancelled: nothing was stored yet
        asked: dict[str, Any] = {"threadId": thread_id, "itemsView": "full", "sortDirection": "asc"}
        if cursor:
            asked["cursor"] = cursor
        page = await _decoded(turns_page_decoder, await client.request_raw("thread/turns/list", asked))
        turns.extend(page.data)
        cursor = page.next_cursor
        request.report(f"page {page_no + 1}: {len(turns)} turns read", min(10 + 10 * (page_no + 1), 70))
        if not cursor or not page.data:
            break
    request.check()
    if app.capture is not None:
        request.report("reconciling into the store", 80)
        pipeline = app.capture.pipeline
        first = [thread_event(read.thread)]
        with anyio.fail_after(30):
            # A slice at a time, each committed before the next is built: the capture thread's
            # transaction never runs long, so other commands are answered between slices.
            for at in range(0, max(len(turns), 1), SLICE_TURNS):
                events = await anyio.to_thread.run_sync(turn_events, read.thread.id, turns[at : at + SLICE_TURNS])
                pipeline.feed_events(first + events)
                first = []
                await pipeline.drain()
    return msgspec.Raw(await in_slices(view_of(read.thread, turns)))


@command("codex_app_server_request_thread_snapshot", params=SnapshotParams, result=ThreadSnapshot)
async def request_thread_snapshot(app: App, params: SnapshotParams) -> msgspec.Raw:
    """The thread with its turns and items as the sidecar reports them, reconciled into the store."""
    return await take_snapshot(app, params.thread_id, current())
