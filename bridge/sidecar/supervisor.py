"""The supervisor of ``codex app-server``: generations, restarts, reconnects, the kill switch.

Each connection to codex is a *generation*: a :class:`.connection.CodexConnection`
(a spawned process or the daemon's socket) with its own JSON-RPC client
(:mod:`.rpc`); callbacks from an older generation are ignored, so a late event
from a dead process can never touch the state of its successor. The handshake,
account and login requests are the :class:`.session.CodexSession`'s; what each
start, exit, due restart, lost connection, stop or config change means is
decided by the pure :class:`.lifecycle.Lifecycle` (with :mod:`.policy`). The
supervisor does the I/O those decisions call for and publishes a typed
:class:`.events.SidecarState` and lifecycle events whenever they change.

Attach mode (``start("attach")``) opens a :class:`.connection.DaemonConnection`
to the user's ``codex app-server daemon``: the same client and handshake (done
by the bridge itself, as an observer), threads followed by
:class:`.attach.ThreadFollower`, and a reconnect loop with capped backoff
instead of the restart policy (a daemon that is down is not a crash loop).
``stop`` only disconnects.

Other subsystems plug in without touching the host: state and lifecycle
subscribers (:meth:`Supervisor.add_state_listener`,
:meth:`Supervisor.add_lifecycle_listener`), notification batches through
:meth:`Supervisor.add_stream_listener` (gated by the kill switch), approvals
through :meth:`Supervisor.set_request_handler`, and requests of their own
through :meth:`Supervisor.stream_client`.
"""
from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable, Coroutine
from typing import Any

import anyio
from anyio.abc import TaskGroup, TaskStatus

from bridge import errors
from bridge.config.model import IngestConfig
from bridge.config.store import ConfigSource
from bridge.errors import BridgeError
from bridge.sidecar.attach import (
    Backfill,
    ThreadFollower,
    resolve_socket_path,
)
from bridge.sidecar.auth import (
    Handshake,
    handshake_error,
)
from bridge.sidecar.connection import CodexConnection, DaemonConnection, SpawnedConnection
from bridge.sidecar.events import (
    Exited,
    LifecycleEvent,
    LifecycleListener,
    Publisher,
    Rehandshaken,
    SidecarState,
    Spawned,
    StateListener,
)
from bridge.sidecar.generation import (
    Generation,
    SpawnBudgetExhausted,
    SupervisorOptions,
    Totals,
    sets_otel,
)
from bridge.sidecar.lifecycle import UP, Lifecycle
from bridge.sidecar.process import SpawnSpec, build_spec, resolve_binary
from bridge.sidecar.protocol import (
    Envelope,
)
from bridge.sidecar.rpc import FaultListener, NotificationListener, RequestHandler, RpcClient
from bridge.sidecar.session import CodexSession
from bridge.sidecar.status import (
    INACTIVE,
    STOPPING,
    CodexAccountStatus,
    CodexAppServerStatus,
    LoginStartResult,
    SidecarFacts,
    derive,
)

log = logging.getLogger("bridge.sidecar")





def _tail(gen: Generation | None, count: int) -> list[str]:
    """The last ``count`` stderr lines of ``gen``'s process (a daemon's stderr is its own)."""
    stderr = gen.conn.stderr if gen is not None else None
    return stderr.tail(count) if stderr is not None else []


class Supervisor:
    """Spawns, watches, restarts and stops ``codex app-server``; the authority on its status."""

    def __init__(self, config: ConfigSource, options: SupervisorOptions | None = None) -> None:
        self._config = config
        self._pub = Publisher()
        self.options = options or SupervisorOptions()
        self.session = CodexSession(self, self.options)
        self._lc = Lifecycle()  # the pure sequencing: phase, crash window, spawn budget, restart token
        self._gen: Generation | None = None
        self._generations = 0
        self._lifecycle = anyio.Lock()
        self._tg: TaskGroup | None = None
        self._closed = anyio.Event()
        self._binary: str | None = None
        self._stream_listeners: list[NotificationListener] = []
        self._request_handlers: dict[str, RequestHandler] = {}
        self._fault_listeners: list[FaultListener] = []
        self._client_listeners: list[Callable[[RpcClient], None]] = []
        self._totals = Totals()
        self.restart_events_total = 0
        self.followed_thread_ids: list[str] = []
        self._attach_scope: anyio.CancelScope | None = None
        self._attach_ready = anyio.Event()
        self._follower = ThreadFollower(
            idle_unsubscribe_s=self.options.idle_unsubscribe,
            clock=self.options.clock,
            enabled=lambda: not self.kill_switch,
            on_change=self.refresh,
        )
        self._pub.prime(self.status())

    # --- running ------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Serve until :meth:`aclose`: holds the tasks of every generation."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            tg.start_soon(self._ticker)
            task_status.started()
            await self._closed.wait()
            tg.cancel_scope.cancel()
        self._tg = None

    async def aclose(self, *, fast: bool = False) -> None:
        """Stop the sidecar (bounded; ``fast`` fits the bridge's shutdown budget) and end :meth:`run`."""
        with anyio.CancelScope(shield=True):
            await self.stop(graces=(0.6, 0.3, 0.3) if fast else None)
        self._closed.set()

    async def _ticker(self) -> None:
        while True:
            await anyio.sleep(self.options.tick)
            self.refresh()

    # --- plumbing for other subsystems --------------------------------------

    def add_stream_listener(self, listener: NotificationListener) -> None:
        """``listener(batch)`` gets every notification batch while the kill switch is off."""
        self._stream_listeners.append(listener)

    def set_request_handler(self, method: str, handler: RequestHandler | None) -> None:
        """Handle codex→bridge requests ``method`` (approvals); unhandled ones are answered -32601."""
        if handler is None:
            self._request_handlers.pop(method, None)
        else:
            self._request_handlers[method] = handler
        if self._gen is not None:
            self._gen.client.set_request_handler(method, handler)

    def add_fault_listener(self, listener: FaultListener) -> None:
        """``listener(fault)`` for every frame codex sent that could not be used (any generation)."""
        self._fault_listeners.append(listener)
        if self._gen is not None:
            self._gen.client.add_fault_listener(listener)

    def add_client_listener(self, listener: Callable[[RpcClient], None]) -> None:
        """``listener(client)`` for every new connection to codex, before it reads (transcript taps)."""
        self._client_listeners.append(listener)

    def client_created(self, client: RpcClient) -> None:
        """Tell the client listeners about a new connection (spawned or attached)."""
        for listener in self._client_listeners:
            try:
                listener(client)
            except Exception:
                log.exception("client listener failed")

    def add_lifecycle_listener(self, listener: LifecycleListener) -> None:
        """``listener(event)`` for every :class:`Spawned`, :class:`Exited` and :class:`Rehandshaken`."""
        self._pub.lifecycle_listeners.append(listener)

    def add_state_listener(self, listener: StateListener) -> None:
        """``listener(state)`` each time the status the host would see changes (the host notifier is one)."""
        self._pub.state_listeners.append(listener)

    def set_backfill(self, backfill: Backfill | None) -> None:
        """Attach mode: ``await backfill(thread_id)`` reconciles a followed thread after its turn."""
        self._follower.backfill = backfill

    @property
    def connection(self) -> str:
        """``spawn`` or ``attach``: the running mode, else the configured one."""
        return self._lc.connection or self._config.current.codex.connection

    @property
    def followed(self) -> list[str]:
        """Threads whose live events this connection receives."""
        if self.connection == "attach":
            return self._follower.followed_ids
        return list(self.followed_thread_ids)

    def thread_followed(self, thread_id: str) -> None:
        """The host subscribed to a thread with ``thread/resume``."""
        if self.connection == "attach":
            self._follower.note_resumed(thread_id)
        elif thread_id not in self.followed_thread_ids:
            self.followed_thread_ids.append(thread_id)
        self.refresh()

    @property
    def client(self) -> RpcClient | None:
        return self._gen.client if self._gen is not None else None

    @property
    def binary_path(self) -> str | None:
        return self._binary

    @property
    def codex_version(self) -> str | None:
        return self.session.codex_version

    @property
    def kill_switch(self) -> bool:
        return self._config.current.stream_kill_switch

    def stream_client(self) -> RpcClient:
        """The client for stream commands, or the error saying why there is none to use."""
        gen = self._require_initialized()
        if self.kill_switch:
            raise BridgeError(
                errors.KILL_SWITCH_ENGAGED,
                "The stream kill switch is on; turn it off with codex_app_server_set_stream_kill_switch first.",
            )
        required = self.required_mode
        if not self.session.auth.mode_allowed(required):
            raise BridgeError(
                errors.AUTH_NOT_CONFIRMED,
                f"The sidecar has not confirmed a {required} login (it reports {self.session.auth.state}"
                + (f" with {self.session.auth.mode}" if self.session.auth.mode else "")
                + "); log in first.",
                authState=self.session.auth.state,
                authMode=self.session.auth.mode,
            )
        return gen.client

    def metrics(self) -> dict[str, Any]:
        """Counters for the reliability metrics (totals over every generation)."""
        gen = self._gen
        live = gen.client if gen is not None else None
        return self._totals.metrics(live, gen.conn.stderr if gen is not None else None, self.restart_events_total)

    def stderr_tail(self, count: int = 20) -> list[str]:
        return _tail(self._gen, count)

    # --- status ---------------------------------------------------------------

    @property
    def required_mode(self) -> str:
        return self._config.current.app_server_auth_mode

    def _facts(self) -> SidecarFacts:
        gen = self._gen
        return SidecarFacts(
            process_up=self._lc.phase == UP and gen is not None,
            handshake=gen.handshake if gen is not None else Handshake.NOT_STARTED,
            auth=self.session.auth,
            required_mode=self.required_mode,
            kill_switch=self.kill_switch,
            alive=gen.alive if gen is not None else False,
            last_frame_valid=gen.client.last_frame_valid if gen is not None else True,
        )

    def state(self) -> SidecarState:
        """The typed state now: the status the host sees and the facts it is derived from."""
        facts = self._facts()
        return SidecarState(self._status(facts), facts)

    def status(self) -> CodexAppServerStatus:
        return self._status(self._facts())

    def _status(self, facts: SidecarFacts) -> CodexAppServerStatus:
        health = derive(facts)
        state = health.state if self._lc.phase == UP else self._lc.phase
        gen = self._gen
        required = self.required_mode
        auth = self.session.auth
        return CodexAppServerStatus(
            state=state,
            initialized=gen is not None and gen.handshake is Handshake.INITIALIZED,
            initialize_sent=gen is not None and gen.handshake in (Handshake.ANSWERED, Handshake.INITIALIZED),
            auth_state=auth.state,
            auth_mode=auth.mode,
            auth_mode_allowed=auth.mode_allowed(required),
            stream_healthy=health.stream_healthy,
            stream_kill_switch=self.kill_switch,
            restart_budget=self._lc.window.budget,
            restart_attempts_in_window=self._lc.restart_attempts(self.options.clock()),
            last_error=self._pub.last_error,
            last_info=self._pub.last_info,
            auth_url=auth.auth_url if auth.login_pending else None,
            pid=gen.conn.pid if gen is not None and self._lc.phase in (UP, STOPPING) else None,
            codex_version=self.session.codex_version,
            connection=self.connection,
            followed_thread_ids=self.followed,
            last_transition_at_iso=self._pub.transition_iso,
        )

    def account_status(self) -> CodexAccountStatus:
        return self.session.account_status()

    def refresh(self) -> None:
        """Publish the state to the state listeners if the status it holds has changed."""
        self._pub.publish(self._facts(), self._status)

    def error(self, message: str) -> None:
        """Record ``lastError`` (redacted); published with the next :meth:`refresh`."""
        self._pub.error(message)

    def info(self, message: str) -> None:
        """Record ``lastInfo`` (redacted); published with the next :meth:`refresh`."""
        self._pub.info(message)

    def is_current(self, gen: Generation) -> bool:
        return gen is self._gen

    def start_soon(self, fn: Callable[[Generation], Coroutine[Any, Any, None]], gen: Generation) -> None:
        if self._tg is not None:
            self._tg.start_soon(fn, gen)

    # --- lifecycle --------------------------------------------------------

    async def start(self, connection: str = "spawn") -> CodexAppServerStatus:
        """Spawn codex app-server; returns once the process is up (``running``)."""
        mode = connection.strip().lower()
        if mode not in ("spawn", "attach"):
            raise errors.invalid_params("start_codex_app_server", "connection", "must be 'spawn' or 'attach'")
        if mode == "attach":
            return await self._start_attach()
        async with self._lifecycle:
            self._check_startable("spawn")
            if self._lc.phase == UP and self._gen is not None:
                return self.status()
            self._lc = self._lc.start("spawn")  # supersedes a pending restart and leaves crash_loop
            self._pub.last_error = None
            self.info("Starting codex app-server.")
            self.refresh()
            try:
                gen = await self._spawn()
            except SpawnBudgetExhausted as exc:
                self._lc = self._lc.spawn_refused()
                self.error(exc.message)
                self.refresh()
                raise
            except BridgeError as exc:
                self._lc = self._lc.spawn_failed()
                self.error(exc.message)
                self.refresh()
                raise
        with anyio.move_on_after(self.options.start_settle):
            await gen.exited.wait()
        if gen.exited.is_set():
            tail = "; ".join(_tail(gen, 3))
            raise BridgeError(
                errors.SIDECAR_SPAWN_FAILED,
                f"codex app-server ({gen.conn.where}) exited with code {gen.exit_code} right after it "
                f"started{': ' + tail if tail else ''}. Check the binary and codex.args.",
                path=gen.conn.where,
                exitCode=gen.exit_code,
            )
        return self.status()

    def _check_startable(self, mode: str) -> None:
        refusal = self._lc.start_refusal(mode, kill_switch=self.kill_switch)
        if refusal == "kill_switch":
            raise BridgeError(
                errors.KILL_SWITCH_ENGAGED,
                "The stream kill switch is on, so codex app-server was not started; "
                "turn it off with codex_app_server_set_stream_kill_switch first.",
            )
        if refusal == "other_mode":
            other = self._lc.connection
            raise BridgeError(
                errors.NOT_ALLOWED,
                f"codex app-server is in {other} mode ({self._lc.phase}); call stop_codex_app_server first, "
                f"then start it with connection {mode!r}.",
                connection=other,
            )

    def _socket_path(self) -> str:
        cfg = self._config.current.codex
        environ = self.options.environ if self.options.environ is not None else os.environ
        return resolve_socket_path(cfg.socket_path, cfg.home, environ)

    async def _start_attach(self) -> CodexAppServerStatus:
        """Connect to the user's daemon; returns after the first attempt (``running``, or ``starting`` + why)."""
        async with self._lifecycle:
            self._check_startable("attach")
            if self._attach_scope is None:
                self._lc = self._lc.start("attach")
                self._pub.last_error = None
                self.info(f"Connecting to the codex app-server daemon at {self._socket_path()}.")
                self.refresh()
                if self._tg is None:
                    raise RuntimeError("Supervisor.run() is not running")
                self._attach_ready = anyio.Event()
                self._attach_scope = anyio.CancelScope()
                self._tg.start_soon(self._attach_loop, self._attach_scope)
        with anyio.move_on_after(self.options.attach_wait):
            await self._attach_ready.wait()
        return self.status()

    async def _attach_loop(self, scope: anyio.CancelScope) -> None:
        """Connect, handshake, follow; when the connection is lost, reconnect with capped backoff, forever."""
        failures = 0
        with scope:
            try:
                # attach mode only: the WebSocket stack (wsproto) is imported now, off the event loop
                await anyio.to_thread.run_sync(importlib.import_module, "bridge.sidecar.websocket")
                from bridge.sidecar.websocket import WebSocketConnectError

                while not self.kill_switch:
                    path = self._socket_path()
                    try:
                        async with self._lifecycle:
                            gen = await self._connect(path)
                    except WebSocketConnectError as exc:
                        failures += 1
                        self._lc, delay = self._lc.connection_failed(failures, self.options.rng())
                        self.error(
                            f"The codex app-server daemon is not reachable ({exc}); retrying in {delay:.1f} s. "
                            "Start it with `codex app-server daemon start`, or check codex.socketPath."
                        )
                        self.refresh()
                        self._attach_ready.set()
                        await anyio.sleep(delay)
                        continue
                    failures = 0
                    await self._attach_handshake(gen)
                    self._attach_ready.set()
                    await gen.exited.wait()
                    if gen.expected_exit:
                        return
                    log.warning("the codex app-server daemon closed the connection; reconnecting")
                    self._lifecycle_event(Exited(None, gen.exit_code, expected=False, connection="attach"))
                    if self._gen is gen:
                        self._gen = None
                    self.session.auth = self.session.auth.process_replaced()
                    failures = 1
                    self._lc, delay = self._lc.connection_lost(self.options.rng())
                    self.error(
                        "The codex app-server daemon closed the connection (it stopped or restarted); "
                        f"reconnecting in {delay:.1f} s."
                    )
                    self.refresh()
                    await anyio.sleep(delay)
                if self._gen is None:
                    self._lc = self._lc.reconnect_ended(connected=False)
                    self.info("Reconnecting to the codex app-server daemon stopped: the stream kill switch is on.")
                    self.refresh()
            finally:
                if self._attach_scope is scope:
                    self._attach_scope = None
                self._attach_ready.set()

    async def _connect(self, path: str) -> Generation:
        """Open an attach generation: one WebSocket connection to the daemon (the caller holds the lock)."""
        cfg = self._config.current
        conn = await DaemonConnection.connect(
            path, max_frame_bytes=cfg.limits.max_frame_bytes, timeout=self.options.attach_connect_timeout
        )
        gen = self._adopt(conn)
        self.info(f"Connected to the codex app-server daemon at {path}; initializing as an observer.")
        log.info("attached to the codex app-server daemon at %s", path)
        self.refresh()
        return gen

    async def _attach_handshake(self, gen: Generation) -> None:
        """initialize → initialized → account/read, by the bridge itself: nobody else would after a reconnect."""
        try:
            await self.session.initialize(gen)
            await self.session.initialized(gen)
            note = (
                " Warning: this daemon took the bridge's initialize as its originator (see docs/attach.md)."
                if self.session.originator_imposed
                else ""
            )
            self.info(
                f"Attached to the codex app-server daemon at {gen.conn.where} as an observer; "
                f"it reports {self.session.auth.state}.{note}"
            )
        except BridgeError as exc:
            if self._gen is gen:
                self.error(f"The handshake with the codex app-server daemon failed: {exc.message}")
        self.refresh()

    async def _follow(self, gen: Generation) -> None:
        while gen.handshake is not Handshake.INITIALIZED:
            await anyio.sleep(0.05)
        await self._follower.run(gen.client)

    def _adopt(self, conn: CodexConnection) -> Generation:
        """Make ``conn`` (with a new client on its transport) the current generation and start watching it."""
        client = RpcClient(
            conn.transport, request_timeout=self._config.current.codex.request_timeout_ms / 1000, observer=conn.observer
        )
        conn.bind(client)
        self._generations += 1
        gen = Generation(self._generations, conn, client)
        client.closed_error = lambda method: self.closed_error(gen, method)
        client.add_notification_listener(lambda batch: self._on_notifications(gen, batch))
        for fault_listener in self._fault_listeners:
            client.add_fault_listener(fault_listener)
        client.validity_listener = lambda _valid: self.refresh()
        for method, handler in self._request_handlers.items():
            client.set_request_handler(method, handler)
        self.client_created(client)
        self._gen = gen
        self._lc = self._lc.connected()
        self.session.auth = self.session.auth.process_replaced()
        if self._tg is None:
            raise RuntimeError("Supervisor.run() is not running")
        self._tg.start_soon(self._watch, gen)
        self._lifecycle_event(Spawned(conn.pid, gen.number, conn.kind))
        return gen

    async def _spawn(self) -> Generation:
        """Start a new generation (the caller holds the lifecycle lock)."""
        cfg = self._config.current.codex
        environ = self.options.environ if self.options.environ is not None else os.environ
        binary = resolve_binary(cfg.binary_path, environ)
        self._binary = binary
        extra = self.options.extra_args() if self.options.extra_args is not None else []
        if sets_otel(cfg.args):
            extra = []  # the configured codex.args say where codex's own OTEL goes: they win
        spec: SpawnSpec = build_spec(binary, [*cfg.args, *extra], cfg.env, cfg.home, environ)
        now = self.options.clock()
        decision = self._lc.request_spawn(now)
        if not decision.allowed:
            raise SpawnBudgetExhausted(self._lc.spawns, decision.retry_after)
        max_frame_bytes = self._config.current.limits.max_frame_bytes
        if self.options.spawn is not None:
            conn = await self.options.spawn(spec, max_frame_bytes)
        else:
            conn = await SpawnedConnection.spawn(spec, max_frame_bytes=max_frame_bytes)
        self._lc = self._lc.spawned(decision)  # only a process that exists uses the budget
        gen = self._adopt(conn)
        gen.spawned_at = now
        self.info(f"codex app-server started (pid {conn.pid}); call codex_app_server_initialize next.")
        log.info("codex app-server started: pid %s, binary %s", conn.pid, binary)
        self.refresh()
        return gen

    def closed_error(self, gen: Generation, method: str) -> BridgeError:
        return gen.conn.closed_error(method)

    async def _watch(self, gen: Generation) -> None:
        """Run one generation's tasks until its process exits, then react to the exit."""
        async with anyio.create_task_group() as tg:
            tg.start_soon(gen.conn.pump)
            tg.start_soon(gen.client.run)
            tg.start_soon(self.session.liveness, gen)
            if gen.attach:
                tg.start_soon(self._follow, gen)
            code = await gen.conn.wait()
            gen.exit_code = code
            # Let the reader drain what the process wrote before it died.
            with anyio.move_on_after(0.5):
                while not gen.client.closed:
                    await anyio.sleep(0.01)
            tg.cancel_scope.cancel()
        gen.exited.set()
        self._totals.fold(gen.client.counters, gen.conn.stderr)
        if gen.expected_exit or self._gen is not gen or gen.attach:
            return  # attach mode: the attach loop reconnects
        await self._unexpected_exit(gen, code)

    async def _unexpected_exit(self, gen: Generation, code: int | None) -> None:
        with anyio.CancelScope(shield=True):
            await gen.conn.stop(eof_grace=0.0, term_grace=0.2, kill_grace=0.5)  # reap any child it left
        tail = "; ".join(_tail(gen, 2))
        log.warning("codex app-server (pid %s) exited unexpectedly with code %s", gen.conn.pid, code)
        self._lifecycle_event(Exited(gen.conn.pid, code, expected=False, connection=gen.conn.kind))
        self._gen = None
        self.session.auth = self.session.auth.process_replaced()
        what = f"codex app-server (pid {gen.conn.pid}) exited unexpectedly with code {code}"
        if tail:
            what += f" (stderr: {tail})"
        self._lc, verdict = self._lc.unexpected_exit(
            self.options.clock(), self.options.rng(), kill_switch=self.kill_switch
        )
        window = self._lc.window
        if verdict.action == "not_restarted":
            self.error(f"{what}; not restarted because the stream kill switch is on.")
            self.refresh()
            return
        if verdict.action == "crash_loop":
            self.error(
                f"{what}; that is {verdict.attempts} unexpected exits within {window.window:g} s, so it is "
                "not restarted (crash_loop). Fix the cause (a codex.* config change resets the spawn budget), then "
                "start_codex_app_server."
            )
            self.refresh()
            return
        self.error(what + ".")
        self.info(
            f"Restarting codex app-server in {verdict.delay:.2f} s "
            f"(unexpected exit {verdict.attempts} of {window.budget} allowed within {window.window:g} s)."
        )
        self.refresh()
        token = self._lc.token
        await anyio.sleep(verdict.delay)
        async with self._lifecycle:
            self._lc, action = self._lc.restart_due(token, kill_switch=self.kill_switch)
            if action == "superseded":
                return
            if action == "kill_switch":
                self.info("Restart cancelled: the stream kill switch is on.")
                self.refresh()
                return
            try:
                new = await self._spawn()
            except SpawnBudgetExhausted as exc:
                self._lc = self._lc.spawn_refused()
                self.error(f"{what}; {exc.message}")
                self.refresh()
                return
            except BridgeError as exc:
                self._lc = self._lc.spawn_failed()
                self.error(f"Restart failed: {exc.message}")
                self.refresh()
                return
            self.restart_events_total += 1
        await self._rehandshake(new)

    async def _rehandshake(self, gen: Generation) -> None:
        """After an automatic restart: initialize → initialized → account/read, unasked."""
        try:
            await self.session.initialize(gen)
            await self.session.initialized(gen)
            self.info(f"codex app-server restarted (pid {gen.conn.pid}) and re-handshaken.")
            self._lifecycle_event(Rehandshaken(gen.conn.pid, gen.number))
        except BridgeError as exc:
            if self._gen is gen:
                self.error(f"Automatic re-handshake after a restart failed: {exc.message}")
        self.refresh()

    async def stop(self, graces: tuple[float, float, float] | None = None) -> CodexAppServerStatus:
        """Stop the sidecar from any state; never leaves a process behind.

        ``graces``: seconds to wait after closing stdin, after SIGTERM and after SIGKILL.
        """
        self._lc = self._lc.stop_requested()
        if self._attach_scope is not None:
            self._attach_scope.cancel()  # no reconnect after this
        async with self._lifecycle:
            gen = self._gen
            if gen is not None:
                # Stopped on request while alive: not a crash, so its spawn is given back.
                self._lc = self._lc.stopping(gen.spawned_at if not gen.exited.is_set() else None)
                gen.expected_exit = True
                self.info(gen.conn.stopping_note())
                self.refresh()
                opts = self.options
                eof, term, kill = graces or (opts.stop_eof_grace, opts.stop_term_grace, opts.stop_kill_grace)
                code = await gen.conn.stop(eof_grace=eof, term_grace=term, kill_grace=kill)
                log.info("codex app-server (pid %s) stopped with code %s", gen.conn.pid, code)
                self._lifecycle_event(
                    Exited(gen.conn.pid, code, expected=True, connection=gen.conn.kind)
                )
                self._gen = None
                self.session.auth = self.session.auth.process_replaced()
                self.info(gen.conn.stopped_note(code))
            elif self._lc.phase != INACTIVE:
                self.info("codex app-server stopped.")
            self._lc = self._lc.stopped()
            self.refresh()
            return self.status()

    async def set_kill_switch(self, enabled: bool) -> CodexAppServerStatus:
        """Persist the kill switch (config ``streamKillSwitch``); on: no stream, no restart."""
        old = self._config.current
        new = self._config.update({"streamKillSwitch": bool(enabled)})
        self.config_changed(old, new)
        return self.status()

    def config_changed(self, old: IngestConfig, new: IngestConfig) -> None:
        """React to a saved config change (the kill switch, the required auth mode, the timeout)."""
        if self._gen is not None:
            self._gen.client.request_timeout = new.codex.request_timeout_ms / 1000
        # A changed codex.* is a new attempt (the spawn budget starts over); the kill switch cancels what is pending.
        self._lc = self._lc.config_changed(
            codex_changed=new.codex != old.codex,
            kill_switch_on=new.stream_kill_switch and not old.stream_kill_switch,
            connected=self._gen is not None,
        )
        if new.stream_kill_switch != old.stream_kill_switch:
            if new.stream_kill_switch:
                if self._attach_scope is not None and self._gen is None:
                    self._attach_scope.cancel()  # not connected: stop trying
                self.info("Stream kill switch on: stream enrichment stopped; the OTEL baseline is untouched.")
            else:
                self.info("Stream kill switch off: start the sidecar and run the handshake to resume enrichment.")
        self.refresh()

    def codex_info(self) -> dict[str, Any] | None:
        """``bridge_info.codex``: the binary in use (attach: the control socket), its version, the mode."""
        followed = list(self.followed_thread_ids)
        if self.connection == "attach":
            return {"path": self._socket_path(), "version": self.session.codex_version, "connection": "attach",
                    "followedThreadIds": followed}  # fmt: skip
        if self._binary is None:
            return None
        return {"path": self._binary, "version": self.session.codex_version, "connection": "spawn",
                "followedThreadIds": followed}  # fmt: skip

    def _lifecycle_event(self, event: LifecycleEvent) -> None:
        self._pub.lifecycle(event)

    # --- liveness ------------------------------------------------------------

    # --- notifications from the sidecar ------------------------------------------

    def _on_notifications(self, gen: Generation, batch: list[Envelope]) -> None:
        if gen is not self._gen:
            return
        changed = False
        for env in batch:
            method = env.method
            if method is not None and method.startswith("account/") and self.session.handles(method):
                changed = self.session.on_account_note(gen, method, env) or changed
        if changed:
            self.refresh()
        if self._stream_listeners and not self._config.current.stream_kill_switch:
            for listener in self._stream_listeners:
                try:
                    listener(batch)
                except Exception:
                    log.exception("stream listener failed")

    # --- handshake ---------------------------------------------------------------

    def _require_gen(self) -> Generation:
        gen = self._gen
        if gen is None or self._lc.phase != UP:
            state = self._lc.phase
            raise BridgeError(
                errors.SIDECAR_NOT_RUNNING,
                f"codex app-server is not running (state {state}); call start_codex_app_server first.",
                state=state,
            )
        return gen

    def _require_initialized(self) -> Generation:
        gen = self._require_gen()
        problem = handshake_error("account", gen.handshake)
        if problem:
            raise BridgeError(errors.HANDSHAKE_ORDER, problem, handshake=gen.handshake.value)
        return gen

    async def _attached_handshake(self, gen: Generation) -> CodexAppServerStatus:
        """Attach mode: the bridge runs the handshake itself; the host's steps wait for it."""
        with anyio.move_on_after(gen.client.request_timeout):
            while gen.handshake is not Handshake.INITIALIZED and gen is self._gen:
                await anyio.sleep(0.05)
        self.refresh()
        return self.status()

    def _refuse_in_attach(self, what: str) -> None:
        if self.connection == "attach":
            raise BridgeError(
                errors.NOT_ALLOWED,
                f"Attached to the user's codex daemon as an observer, the bridge does not {what}: "
                "the daemon's account belongs to the user's own client.",
                connection="attach",
            )

    async def initialize(self) -> CodexAppServerStatus:
        gen = self._require_gen()
        if gen.attach:
            return await self._attached_handshake(gen)
        problem = handshake_error("initialize", gen.handshake)
        if problem:
            raise BridgeError(errors.HANDSHAKE_ORDER, problem, handshake=gen.handshake.value)
        if gen.handshake in (Handshake.ANSWERED, Handshake.INITIALIZED):
            self.info("initialize was already answered by this codex app-server process.")
            self.refresh()
            return self.status()
        await self.session.initialize(gen)
        return self.status()

    async def initialized(self) -> CodexAppServerStatus:
        gen = self._require_gen()
        if gen.attach:
            return await self._attached_handshake(gen)
        problem = handshake_error("initialized", gen.handshake)
        if problem:
            raise BridgeError(errors.HANDSHAKE_ORDER, problem, handshake=gen.handshake.value)
        await self.session.initialized(gen)
        return self.status()

    # --- auth ----------------------------------------------------------------------

    # --- session commands (checked here, performed by the session) -------------------

    async def account_read(self) -> CodexAccountStatus:
        gen = self._require_initialized()
        await self.session.read_account(gen)
        return self.account_status()

    async def login_start(self, auth_mode: str, api_key: str | None) -> LoginStartResult:
        """Start a login at the sidecar; an API key is forwarded and never kept."""
        self._refuse_in_attach("start logins")
        return await self.session.login_start(self._require_initialized(), auth_mode, api_key)

    async def login_cancel(self, login_id: str) -> CodexAccountStatus:
        self._refuse_in_attach("cancel logins")
        return await self.session.login_cancel(self._require_initialized(), login_id)

    async def login_completed(self, success: bool, login_id: str | None, error: str | None) -> CodexAccountStatus:
        """The host says a login finished; only the sidecar's confirmation authenticates."""
        self._refuse_in_attach("take part in logins")
        return await self.session.login_completed(self._require_initialized(), success, login_id, error)

    async def account_updated(self, auth_mode: str, authenticated: bool) -> CodexAccountStatus:
        """Check the host's claim against the sidecar; -32012 when it does not hold."""
        return await self.session.account_updated(self._require_initialized(), auth_mode, authenticated)

    async def logout(self) -> CodexAccountStatus:
        self._refuse_in_attach("log out")
        return await self.session.logout(self._require_initialized())
