"""Attach mode: following the user's own codex sessions through the shared app-server daemon.

Since 0.169.0 the codex TUI talks to ``codex app-server daemon``; a second
client of the daemon can follow any of its threads live. The supervisor
(:mod:`bridge.sidecar.supervisor`) runs attach mode with the same RPC client
as spawn mode over a :class:`~bridge.sidecar.connection.DaemonConnection` (one
WebSocket connection to the daemon; stopping it disconnects, the daemon keeps
running); this module holds the rest of what is particular to it:

- :func:`resolve_socket_path`: ``codex.socketPath``, else
  ``$CODEX_HOME/app-server-control/app-server-control.sock``.
- :data:`OBSERVER_CLIENT_NAME`: the ``clientInfo.name`` the bridge
  initializes with, so that it never becomes the daemon's originator.
- :class:`ThreadFollower`: carries out the pure :class:`~bridge.sidecar.follow.FollowPolicy`
  (subscribe with ``thread/resume``, retry "no rollout found", back-fill,
  unsubscribe idle threads).

The originator. codex 0.169.0 sets its process-wide originator (sent with
every model request and written into each new rollout) from the
``clientInfo.name`` of the first client that initializes, except for client
names it treats as non-originating: the daemon's own control client,
``codex_app_server_daemon``. Initializing with that name leaves the
originator (and the User-Agent suffix) to the user's client, whichever
connects first. A codex that stopped treating the name so would answer
``initialize`` with a User-Agent that starts with it: :func:`imposed_originator`
detects that, and the supervisor says so in ``lastInfo``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import anyio
import msgspec
from anyio.abc import TaskGroup

from bridge import errors
from bridge.errors import BridgeError
from bridge.redact import redact_text
from bridge.sidecar.follow import Action, FollowPolicy, ThreadMeta, resume_retry_delay
from bridge.sidecar.protocol import Envelope
from bridge.sidecar.rpc import RpcClient

log = logging.getLogger("bridge.sidecar.attach")

OBSERVER_CLIENT_NAME = "codex_app_server_daemon"
OBSERVER_CLIENT_TITLE = "capture-bridge (observer)"
SOCKET_RELATIVE = ("app-server-control", "app-server-control.sock")
TICK_S = 1.0
_LIST_PAGES = 50


def resolve_socket_path(configured: str | None, codex_home: str | None, environ: Mapping[str, str]) -> str:
    """``codex.socketPath``, else ``<CODEX_HOME>/app-server-control/app-server-control.sock``.

    ``CODEX_HOME`` is config ``codex.home``, else the environment's, else ``~/.codex``.
    """
    if configured:
        return str(Path(configured).expanduser())
    home = codex_home or environ.get("CODEX_HOME")
    if home:
        base = Path(home).expanduser()
    else:
        user = environ.get("HOME")
        base = (Path(user) if user else Path.home()) / ".codex"
    return str(base.joinpath(*SOCKET_RELATIVE))


def imposed_originator(user_agent: str) -> bool:
    """The daemon answered ``initialize`` with the bridge's name as its originator."""
    return user_agent.startswith(OBSERVER_CLIENT_NAME + "/")


# --- following threads ------------------------------------------------------------


class _Status(msgspec.Struct):
    type: str = "notLoaded"


class _Thread(msgspec.Struct, rename="camel"):
    id: str
    ephemeral: bool = False
    thread_source: str | None = None
    status: _Status | None = None

    def meta(self) -> ThreadMeta:
        return ThreadMeta(self.ephemeral, self.thread_source)


class _ThreadNote(msgspec.Struct):
    thread: _Thread


class _ThreadIdNote(msgspec.Struct, rename="camel"):
    thread_id: str
    status: _Status | None = None


class _LoadedPage(msgspec.Struct, rename="camel"):
    data: list[str] = []
    next_cursor: str | None = None


_thread_note = msgspec.json.Decoder(_ThreadNote)
_id_note = msgspec.json.Decoder(_ThreadIdNote)
_loaded_page = msgspec.json.Decoder(_LoadedPage)
_WATCHED = frozenset({"thread/started", "thread/status/changed", "thread/closed", "turn/completed"})

Backfill = Callable[[str], Awaitable[Any]]


class ThreadFollower:
    """Runs the follow policy against one connection at a time; survives reconnects."""

    def __init__(
        self,
        *,
        idle_unsubscribe_s: float,
        clock: Callable[[], float],
        enabled: Callable[[], bool],
        on_change: Callable[[], None],
    ) -> None:
        self.policy = FollowPolicy(idle_unsubscribe_s)
        self._clock = clock
        self._enabled = enabled
        self._on_change = on_change
        self.backfill: Backfill | None = None
        self.backfills_total = 0
        self._inbox: list[Envelope] = []
        self._wake = anyio.Event()
        self._tg: TaskGroup | None = None
        self._client: RpcClient | None = None
        self._followed: list[str] = []

    @property
    def followed_ids(self) -> list[str]:
        return list(self._followed)

    def note_resumed(self, thread_id: str) -> None:
        """The host resumed a thread itself (``codex_app_server_thread_resume``)."""
        self._apply(self.policy.resumed(thread_id, None, None, self._clock()))

    # --- running ------------------------------------------------------------

    async def run(self, client: RpcClient) -> None:
        """Follow threads over ``client`` (initialized) until cancelled or the connection ends."""
        self._client = client
        self._inbox = []
        client.add_notification_listener(self._on_batch)
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                await self._discover(client)
                while not client.closed:
                    with anyio.move_on_after(TICK_S):
                        await self._wake.wait()
                    self._wake = anyio.Event()
                    notes, self._inbox = self._inbox, []
                    now = self._clock()
                    for env in notes:
                        self._apply(self._on_note(env, now))
                    self._apply(self.policy.tick(now))
                tg.cancel_scope.cancel()
        finally:
            client.remove_notification_listener(self._on_batch)
            self._tg = None
            self._client = None
            self.policy.disconnected()
            self._changed()

    def _on_batch(self, batch: list[Envelope]) -> None:
        picked = [env for env in batch if env.method in _WATCHED]
        if picked:
            self._inbox.extend(picked)
            self._wake.set()

    def _on_note(self, env: Envelope, now: float) -> list[Action]:
        method = env.method
        try:
            if method == "thread/started":
                thread = _thread_note.decode(env.params).thread
                return self.policy.thread_seen(
                    thread.id, thread.meta(), thread.status.type if thread.status else None, now
                )
            note = _id_note.decode(env.params)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return []
        if method == "thread/status/changed" and note.status is not None:
            return self.policy.status_changed(note.thread_id, note.status.type, now)
        if method == "thread/closed":
            return self.policy.status_changed(note.thread_id, "notLoaded", now)
        if method == "turn/completed":
            return self.policy.turn_completed(note.thread_id, now)
        return []

    async def _discover(self, client: RpcClient) -> None:
        """Threads already loaded when the connection began (the ones running are followed)."""
        ids: list[str] = []
        cursor: str | None = None
        try:
            for _ in range(_LIST_PAGES):
                params: dict[str, Any] = {"cursor": cursor} if cursor else {}
                page = _loaded_page.decode(await client.request_raw("thread/loaded/list", params))
                ids.extend(page.data)
                cursor = page.next_cursor
                if not cursor or not page.data:
                    break
        except BridgeError as exc:
            log.warning("thread/loaded/list failed: %s", exc.message)
            return
        for thread_id in ids:
            await self._read(thread_id, seen=True)

    # --- actions -------------------------------------------------------------

    def _apply(self, actions: list[Action]) -> None:
        self._changed()
        tg = self._tg
        if tg is None:
            return
        for action in actions:
            if action.kind == "read":
                tg.start_soon(self._read, action.thread_id)
            elif action.kind == "resume":
                tg.start_soon(self._resume, action.thread_id)
            elif action.kind == "unsubscribe":
                tg.start_soon(self._unsubscribe, action.thread_id)
            elif action.kind == "backfill":
                tg.start_soon(self._backfill, action.thread_id)

    def _changed(self) -> None:
        followed = self.policy.followed
        if followed != self._followed:
            self._followed = followed
            self._on_change()

    async def _read(self, thread_id: str, seen: bool = False) -> None:
        client = self._client
        if client is None:
            return
        try:
            raw = await client.request_raw("thread/read", {"threadId": thread_id})
            thread = _thread_note.decode(raw).thread
        except (BridgeError, msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.info("thread/read %s failed: %s", thread_id, redact_text(str(exc)))
            self._apply(self.policy.failed(thread_id))
            return
        status = thread.status.type if thread.status else None
        now = self._clock()
        if seen:
            self._apply(self.policy.thread_seen(thread_id, thread.meta(), status, now))
        else:
            self._apply(self.policy.read_done(thread_id, thread.meta(), status, now))

    async def _resume(self, thread_id: str) -> None:
        client = self._client
        attempt = 0
        last_try = False
        while client is not None and self._enabled():
            try:
                raw = await client.request_raw("thread/resume", {"threadId": thread_id, "excludeTurns": True})
            except BridgeError as exc:
                message = str((exc.data.get("codexError") or {}).get("message") or exc.message)
                attempt += 1
                delay = resume_retry_delay(attempt, message)
                if delay is None or exc.code != errors.SIDECAR_ERROR:
                    log.info("not following thread %s: %s", thread_id, redact_text(message))
                    break
                await anyio.sleep(delay)
                if self.policy.wants_resume(thread_id):
                    continue
                if not last_try and self.policy.worth_a_last_resume(thread_id):
                    last_try = True  # its turn ended meanwhile: the rollout is written, the turn back-filled
                    continue
                break
            try:
                thread: _Thread | None = _thread_note.decode(raw).thread
            except (msgspec.DecodeError, msgspec.ValidationError):
                thread = None
            meta = thread.meta() if thread is not None else None
            status = thread.status.type if thread is not None and thread.status else None
            log.info("following thread %s", thread_id)
            self._apply(self.policy.resumed(thread_id, meta, status, self._clock()))
            return
        self._apply(self.policy.failed(thread_id))

    async def _unsubscribe(self, thread_id: str) -> None:
        client = self._client
        if client is not None:
            try:
                await client.request_raw("thread/unsubscribe", {"threadId": thread_id})
            except BridgeError as exc:
                log.info("thread/unsubscribe %s failed: %s", thread_id, exc.message)
        log.info("no longer following thread %s", thread_id)
        self._apply(self.policy.unsubscribed(thread_id))

    async def _backfill(self, thread_id: str) -> None:
        """What happened before the subscription, from ``thread/turns/list`` (the ledger dedups)."""
        if self.backfill is None:
            return
        try:
            await self.backfill(thread_id)
            self.backfills_total += 1
        except Exception as exc:
            log.warning("back-filling thread %s failed: %s", thread_id, redact_text(str(exc)))
