"""The supervisor of codex: generations, the mode they run in, stop, the kill switch.

Each connection to codex is a *generation*: a :class:`.connection.CodexConnection`
(a spawned process or the daemon's socket) with its own JSON-RPC client
(:mod:`.rpc`); callbacks from an older generation are ignored, so a late event
from a dead process can never touch the state of its successor. What each
start, exit, due restart, lost connection, stop or config change means is
decided by the pure :class:`.lifecycle.Lifecycle` (with :mod:`.policy`); the
supervisor and its parts do the I/O those decisions call for:

- the *mode* (:class:`.mode.Mode`), chosen once by ``start``:
  :class:`.spawn_mode.SpawnMode` spawns codex and restarts it after an
  unexpected exit (the restart policy); :class:`.attach_mode.AttachMode`
  connects to the user's daemon as an observer and reconnects with capped
  backoff (a daemon that is down is not a crash loop). Every spawn-vs-attach
  difference is one of their methods;
- the session (:class:`.session.CodexSession`): handshake, account and login
  requests over the current generation's client;
- the hub (:class:`.hub.Hub`): everyone who listens (typed state and lifecycle
  events, notification batches, approvals, faults, new clients);
- the view (:class:`.view.StatusView`): the facts, the host-facing status,
  metrics and ``bridge_info.codex``;
- the host's commands and their checks (:class:`.commands.SidecarCommands`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

import anyio
from anyio.abc import TaskGroup, TaskStatus

from bridge import errors
from bridge.config.model import IngestConfig
from bridge.config.store import ConfigSource
from bridge.errors import BridgeError
from bridge.sidecar.attach_mode import AttachMode
from bridge.sidecar.commands import SidecarCommands
from bridge.sidecar.connection import CodexConnection
from bridge.sidecar.events import Exited, LifecycleEvent, Publisher, SidecarState, Spawned
from bridge.sidecar.generation import Generation, SupervisorOptions, Totals
from bridge.sidecar.hub import Hub
from bridge.sidecar.lifecycle import Lifecycle
from bridge.sidecar.mode import Mode
from bridge.sidecar.protocol import Envelope
from bridge.sidecar.rpc import RpcClient
from bridge.sidecar.session import CodexSession
from bridge.sidecar.spawn_mode import SpawnMode
from bridge.sidecar.status import INACTIVE, CodexAppServerStatus
from bridge.sidecar.view import StatusView

log = logging.getLogger("bridge.sidecar")


class Supervisor:
    """Spawns, watches, restarts and stops ``codex app-server`` (or attaches); the authority on its status."""

    def __init__(self, config: ConfigSource, options: SupervisorOptions | None = None) -> None:
        self.config = config
        self.options = options or SupervisorOptions()
        self.pub = Publisher()
        self.session = CodexSession(self, self.options)
        self.lc = Lifecycle()  # the pure sequencing: phase, crash window, spawn budget, restart token
        self.lock = anyio.Lock()  # one start, stop, spawn or connect at a time
        self.gen: Generation | None = None
        self.totals = Totals()
        self.hub = Hub(self.pub, lambda: self.client)
        self.spawn_mode = SpawnMode(self)
        self.attach_mode = AttachMode(self)
        self._modes: dict[str, Mode] = {"spawn": self.spawn_mode, "attach": self.attach_mode}
        self.view = StatusView(self)
        self.commands = SidecarCommands(self)
        self._generations = 0
        self._tg: TaskGroup | None = None
        self._closed = anyio.Event()
        self.pub.prime(self.status())

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

    def task(self, fn: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> None:
        """Run ``fn(*args)`` in :meth:`run`'s task group."""
        if self._tg is None:
            raise RuntimeError("Supervisor.run() is not running")
        self._tg.start_soon(fn, *args)

    # --- what the rest of the bridge reads ------------------------------------------------

    @property
    def connection(self) -> str:
        """``spawn`` or ``attach``: the running mode, else the configured one."""
        return self.lc.connection or self.config.current.codex.connection

    @property
    def mode(self) -> Mode:
        return self._modes[self.connection]

    @property
    def observer(self) -> bool:
        """Attached to the user's daemon as an observer (docs/protocol.md §3.2): logins, logout,
        approvals, thread starts and turns belong to the user's own client (-32017)."""
        return self.mode.observer

    @property
    def followed(self) -> list[str]:
        """Threads whose live events this connection receives."""
        return self.mode.followed

    def thread_followed(self, thread_id: str) -> None:
        """The host subscribed to a thread with ``thread/resume``."""
        self.mode.thread_followed(thread_id)
        self.refresh()

    @property
    def client(self) -> RpcClient | None:
        return self.gen.client if self.gen is not None else None

    @property
    def kill_switch(self) -> bool:
        return self.config.current.stream_kill_switch

    @property
    def required_mode(self) -> str:
        return self.config.current.app_server_auth_mode

    def status(self) -> CodexAppServerStatus:
        return self.view.status()

    def state(self) -> SidecarState:
        """The typed state now: the status the host sees and the facts it is derived from."""
        return self.view.state()

    def metrics(self) -> dict[str, Any]:
        """Counters for the reliability metrics (totals over every generation)."""
        return self.view.metrics()

    def codex_info(self) -> dict[str, Any] | None:
        """``bridge_info.codex``: the binary in use (attach: the control socket), its version, the mode."""
        return self.view.codex_info()

    # --- notes and publishing ----------------------------------------------------------------

    def refresh(self) -> None:
        """Publish the state to the state listeners if the status it holds has changed."""
        self.pub.publish(self.view.facts(), self.view.status)

    def error(self, message: str) -> None:
        """Record ``lastError`` (redacted); published with the next :meth:`refresh`."""
        self.pub.error(message)

    def info(self, message: str) -> None:
        """Record ``lastInfo`` (redacted); published with the next :meth:`refresh`."""
        self.pub.info(message)

    def lifecycle_event(self, event: LifecycleEvent) -> None:
        self.pub.lifecycle(event)

    # --- what the session needs of its owner -----------------------------------------------

    def is_current(self, gen: Generation) -> bool:
        return gen is self.gen

    def start_soon(self, fn: Callable[[Generation], Coroutine[Any, Any, None]], gen: Generation) -> None:
        if self._tg is not None:
            self._tg.start_soon(fn, gen)

    def closed_error(self, gen: Generation, method: str) -> BridgeError:
        return gen.conn.closed_error(method)

    # --- start and stop ----------------------------------------------------------------------

    async def start(self, connection: str = "spawn") -> CodexAppServerStatus:
        """Spawn codex app-server, or attach to the daemon; returns once the first try settled."""
        mode = self._modes.get(connection.strip().lower())
        if mode is None:
            raise errors.invalid_params("start_codex_app_server", "connection", "must be 'spawn' or 'attach'")
        await mode.start()
        return self.status()

    def begin_start(self, kind: str, note: str) -> None:
        """A host start in ``kind`` goes ahead: a new attempt, its last error forgotten."""
        self.lc = self.lc.start(kind)  # supersedes a pending restart and leaves crash_loop
        self.pub.last_error = None
        self.info(note)
        self.refresh()

    async def stop(self, graces: tuple[float, float, float] | None = None) -> CodexAppServerStatus:
        """Stop the sidecar from any state; never leaves a process behind.

        ``graces``: seconds to wait after closing stdin, after SIGTERM and after SIGKILL.
        """
        self.lc = self.lc.stop_requested()
        self.mode.stop_pending()  # no restart or reconnect after this
        async with self.lock:
            gen = self.gen
            if gen is not None:
                # Stopped on request while alive: not a crash, so its spawn is given back.
                self.lc = self.lc.stopping(gen.spawned_at if not gen.exited.is_set() else None)
                gen.expected_exit = True
                self.info(gen.conn.stopping_note())
                self.refresh()
                opts = self.options
                eof, term, kill = graces or (opts.stop_eof_grace, opts.stop_term_grace, opts.stop_kill_grace)
                code = await gen.conn.stop(eof_grace=eof, term_grace=term, kill_grace=kill)
                log.info("codex app-server (pid %s) stopped with code %s", gen.conn.pid, code)
                self.lifecycle_event(Exited(gen.conn.pid, code, expected=True, connection=gen.conn.kind))
                self.gen = None
                self.session.auth = self.session.auth.process_replaced()
                self.info(gen.conn.stopped_note(code))
            elif self.lc.phase != INACTIVE:
                self.info("codex app-server stopped.")
            self.lc = self.lc.stopped()
            self.refresh()
            return self.status()

    async def set_kill_switch(self, enabled: bool) -> CodexAppServerStatus:
        """Persist the kill switch (config ``streamKillSwitch``); on: no stream, no restart."""
        old = self.config.current
        new = self.config.update({"streamKillSwitch": bool(enabled)})
        self.config_changed(old, new)
        return self.status()

    def config_changed(self, old: IngestConfig, new: IngestConfig) -> None:
        """React to a saved config change (the kill switch, the required auth mode, the timeout)."""
        if self.gen is not None:
            self.gen.client.request_timeout = new.codex.request_timeout_ms / 1000
        # A changed codex.* is a new attempt (the spawn budget starts over); the kill switch cancels what is pending.
        self.lc = self.lc.config_changed(
            codex_changed=new.codex != old.codex,
            kill_switch_on=new.stream_kill_switch and not old.stream_kill_switch,
            connected=self.gen is not None,
        )
        if new.stream_kill_switch != old.stream_kill_switch:
            if new.stream_kill_switch:
                if self.gen is None:
                    self.mode.stop_pending()  # not connected: stop trying
                self.info("Stream kill switch on: stream enrichment stopped; the OTEL baseline is untouched.")
            else:
                self.info("Stream kill switch off: start the sidecar and run the handshake to resume enrichment.")
        self.refresh()

    # --- generations ---------------------------------------------------------------------

    def adopt(self, conn: CodexConnection, mode: Mode) -> Generation:
        """Make ``conn`` (with a new client on its transport) the current generation and start watching it."""
        client = RpcClient(
            conn.transport, request_timeout=self.config.current.codex.request_timeout_ms / 1000, observer=conn.observer
        )
        conn.bind(client)
        self._generations += 1
        gen = Generation(self._generations, conn, client)
        client.closed_error = conn.closed_error
        client.add_notification_listener(lambda batch: self._on_notifications(gen, batch))
        client.validity_listener = lambda _valid: self.refresh()
        self.hub.wire(client)
        self.gen = gen
        self.lc = self.lc.connected()
        self.session.auth = self.session.auth.process_replaced()
        self.task(self._watch, gen, mode)
        self.lifecycle_event(Spawned(conn.pid, gen.number, conn.kind))
        return gen

    async def _watch(self, gen: Generation, mode: Mode) -> None:
        """Run one generation's tasks until its connection ends, then let its mode react."""
        async with anyio.create_task_group() as tg:
            tg.start_soon(gen.conn.pump)
            tg.start_soon(gen.client.run)
            tg.start_soon(self.session.liveness, gen)
            tg.start_soon(mode.beside, gen)
            code = await gen.conn.wait()
            gen.exit_code = code
            # Let the reader drain what the process wrote before it died.
            with anyio.move_on_after(0.5):
                while not gen.client.closed:
                    await anyio.sleep(0.01)
            tg.cancel_scope.cancel()
        gen.exited.set()
        self.totals.fold(gen.client.counters, gen.conn.stderr)
        if gen.expected_exit or self.gen is not gen:
            return
        await mode.ended(gen)

    def lost(self, gen: Generation) -> None:
        """``gen`` ended without being stopped: say so, and it is no longer current."""
        self.lifecycle_event(Exited(gen.conn.pid, gen.exit_code, expected=False, connection=gen.conn.kind))
        if self.gen is gen:
            self.gen = None
        self.session.auth = self.session.auth.process_replaced()

    def _on_notifications(self, gen: Generation, batch: list[Envelope]) -> None:
        if gen is not self.gen:
            return
        if self.session.on_notes(gen, batch):
            self.refresh()
        if not self.kill_switch:
            self.hub.stream(batch)
