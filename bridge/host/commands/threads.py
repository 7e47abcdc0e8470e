"""Driving and following codex threads through the bridge's sidecar (docs/protocol.md §3.5).

Params and results are codex's own: the known fields are checked here, the
rest is passed on, because codex grows them every release. Each command needs
a running, initialised sidecar authenticated in the required mode and the kill
switch off (``SidecarCommands.stream_client`` says which is missing).
"""

from __future__ import annotations

from typing import Annotated, Any

import anyio
import msgspec

from bridge import errors
from bridge.capture.snapshot import snapshot_events, snapshot_view, thread_read_decoder, turns_page_decoder
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
from bridge.redact import redact
from bridge.sidecar.rpc import RpcClient

NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]
_decode = msgspec.json.decode


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


async def forward(app: App, method: str, params: dict[str, Any]) -> Any:
    raw = await stream_client(app).request_raw(method, params)
    return redact(_decode(raw)) if len(raw) else None


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
    turns = _turn_count(result)
    request.end("resumed" if turns is None else f"resumed; turns: {turns}")
    return result


def _turn_count(answer: Any) -> int | None:
    """How many turns codex's resume answer carries (``None`` when it carries none, e.g. ``excludeTurns``)."""
    thread = answer.get("thread") if isinstance(answer, dict) else None
    turns = thread.get("turns") if isinstance(thread, dict) else None
    return len(turns) if isinstance(turns, list) else None


async def take_snapshot(app: App, thread_id: str, request: Request | None = None) -> dict[str, Any]:
    """Read a thread from the sidecar, reconcile it into the store, return the sidecar's view.

    With a host ``request``: progress per page, and a cancel stops it before anything is stored.
    """
    request = request or Request("")
    request.begin("Thread snapshot", thread_id)
    try:
        return await _snapshot(app, thread_id, request)
    finally:
        request.end()


async def _snapshot(app: App, thread_id: str, request: Request) -> dict[str, Any]:
    client = stream_client(app)
    read = thread_read_decoder.decode(await client.request_raw("thread/read", {"threadId": thread_id}))
    request.report("thread read", 10)
    turns = []
    cursor: str | None = None
    for page_no in range(1000):  # bounded paging
        request.check()  # cancelled: nothing was stored yet
        asked: dict[str, Any] = {"threadId": thread_id, "itemsView": "full", "sortDirection": "asc"}
        if cursor:
            asked["cursor"] = cursor
        page = turns_page_decoder.decode(await client.request_raw("thread/turns/list", asked))
        turns.extend(page.data)
        cursor = page.next_cursor
        request.report(f"page {page_no + 1}: {len(turns)} turns read", min(10 + 10 * (page_no + 1), 70))
        if not cursor or not page.data:
            break
    request.check()
    if app.capture is not None:
        request.report("reconciling into the store", 80)
        app.capture.pipeline.feed_events(snapshot_events(read.thread, turns))
        with anyio.fail_after(30):
            await app.capture.pipeline.drain()
    return snapshot_view(read.thread, turns)


@command("codex_app_server_request_thread_snapshot", params=SnapshotParams, result=ThreadSnapshot)
async def request_thread_snapshot(app: App, params: SnapshotParams) -> dict[str, Any]:
    """The thread with its turns and items as the sidecar reports them, reconciled into the store."""
    return await take_snapshot(app, params.thread_id, current())
