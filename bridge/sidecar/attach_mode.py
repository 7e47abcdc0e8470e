"""Attach mode: a connection to the user's ``codex app-server daemon``, kept up by a reconnect loop.

``start("attach")`` starts :meth:`AttachMode._loop`: connect to the daemon's
control socket (:class:`.connection.DaemonConnection`), run the handshake as
the bridge itself, as an observer (nobody else would after a reconnect), follow
threads (:class:`.attach.ThreadFollower`) and, when the connection is lost,
connect again with capped backoff (:mod:`.reconnect`) for as long as it takes:
a daemon that is down belongs to the user, it is not a crash loop. Only a stop
or the kill switch ends the loop. The host's handshake steps wait for the
bridge's own handshake; ``stop`` only disconnects.
"""

from __future__ import annotations

import importlib
import logging
import os
from typing import TYPE_CHECKING

import anyio

from bridge.errors import BridgeError
from bridge.sidecar.attach import Backfill, ThreadFollower, resolve_socket_path
from bridge.sidecar.auth import Handshake
from bridge.sidecar.connection import CodexConnection, DaemonConnection, Kind
from bridge.sidecar.generation import Generation

if TYPE_CHECKING:
    from bridge.sidecar.supervisor import Supervisor

log = logging.getLogger("bridge.sidecar")


class AttachMode:
    """The daemon connection, its reconnect loop and the threads it follows (see the module docstring)."""

    kind: Kind = "attach"
    observer = True

    def __init__(self, sup: Supervisor) -> None:
        self._sup = sup
        self._scope: anyio.CancelScope | None = None  # the loop's, while it runs
        self._ready = anyio.Event()  # the loop's first attempt settled
        self.follower = ThreadFollower(
            idle_unsubscribe_s=sup.options.idle_unsubscribe,
            clock=sup.options.clock,
            enabled=lambda: not sup.kill_switch,
            on_change=sup.refresh,
        )

    @property
    def running(self) -> bool:
        """The reconnect loop runs (connected, connecting, or waiting out a delay)."""
        return self._scope is not None

    @property
    def followed(self) -> list[str]:
        return self.follower.followed_ids

    def thread_followed(self, thread_id: str) -> None:
        self.follower.note_resumed(thread_id)

    def set_backfill(self, backfill: Backfill | None) -> None:
        """``await backfill(thread_id)`` reconciles a followed thread after its turn."""
        self.follower.backfill = backfill

    def where(self) -> str:
        """The daemon's control socket (config ``codex.socketPath``, else under ``CODEX_HOME``)."""
        opts = self._sup.options
        cfg = self._sup.config.current.codex
        return resolve_socket_path(cfg.socket_path, cfg.home, opts.environ if opts.environ is not None else os.environ)

    def stop_pending(self) -> None:
        if self._scope is not None:
            self._scope.cancel()

    async def ended(self, gen: Generation) -> None:
        return None  # the loop is waiting for this and reconnects

    # --- the host's start and handshake ----------------------------------------------------

    async def start(self) -> None:
        """Start the loop (unless it runs); returns after its first attempt (``running``, or ``starting`` + why)."""
        sup = self._sup
        async with sup.lock:
            sup.commands.check_startable("attach")
            if self._scope is None:
                sup.begin_start("attach", f"Connecting to the codex app-server daemon at {self.where()}.")
                self._ready = anyio.Event()
                scope = anyio.CancelScope()
                sup.task(self._loop, scope)
                self._scope = scope
        with anyio.move_on_after(sup.options.attach_wait):
            await self._ready.wait()

    async def host_initialize(self, gen: Generation) -> None:
        await self._own_handshake(gen)

    async def host_initialized(self, gen: Generation) -> None:
        await self._own_handshake(gen)

    async def _own_handshake(self, gen: Generation) -> None:
        """The bridge runs the handshake itself; the host's steps wait for it."""
        with anyio.move_on_after(gen.client.request_timeout):
            while gen.handshake is not Handshake.INITIALIZED and self._sup.is_current(gen):
                await anyio.sleep(0.05)
        self._sup.refresh()

    # --- the loop ----------------------------------------------------------------------------

    async def _loop(self, scope: anyio.CancelScope) -> None:
        """Connect, handshake, follow; when the connection is lost, reconnect with capped backoff, forever."""
        sup = self._sup
        failures = 0
        with scope:
            try:
                # attach mode only: the WebSocket stack (wsproto) is imported now, off the event loop
                await anyio.to_thread.run_sync(importlib.import_module, "bridge.sidecar.websocket")
                from bridge.sidecar.websocket import WebSocketConnectError

                while not sup.kill_switch:
                    path = self.where()
                    try:
                        async with sup.lock:
                            gen = await self._connect(path)
                    except WebSocketConnectError as exc:
                        failures += 1
                        sup.lc, delay = sup.lc.connection_failed(failures, sup.options.rng())
                        sup.error(
                            f"The codex app-server daemon is not reachable ({exc}); retrying in {delay:.1f} s. "
                            "Start it with `codex app-server daemon start`, or check codex.socketPath."
                        )
                        sup.refresh()
                        self._ready.set()
                        await anyio.sleep(delay)
                        continue
                    failures = 0
                    await self._handshake(gen)
                    self._ready.set()
                    await gen.exited.wait()
                    if gen.expected_exit:
                        return
                    log.warning("the codex app-server daemon closed the connection; reconnecting")
                    sup.lost(gen)
                    failures = 1
                    sup.lc, delay = sup.lc.connection_lost(sup.options.rng())
                    sup.error(
                        "The codex app-server daemon closed the connection (it stopped or restarted); "
                        f"reconnecting in {delay:.1f} s."
                    )
                    sup.refresh()
                    await anyio.sleep(delay)
                if sup.gen is None:
                    sup.lc = sup.lc.reconnect_ended(connected=False)
                    sup.info("Reconnecting to the codex app-server daemon stopped: the stream kill switch is on.")
                    sup.refresh()
            finally:
                if self._scope is scope:
                    self._scope = None
                self._ready.set()

    async def _connect(self, path: str) -> Generation:
        """Open a generation: one connection to the daemon (the caller holds the lifecycle lock)."""
        sup = self._sup
        limit = sup.config.current.limits.max_frame_bytes
        timeout = sup.options.attach_connect_timeout
        conn: CodexConnection
        if sup.options.connect is not None:
            conn = await sup.options.connect(path, limit, timeout)
        else:
            conn = await DaemonConnection.connect(path, max_frame_bytes=limit, timeout=timeout)
        gen = sup.adopt(conn, self)
        sup.info(f"Connected to the codex app-server daemon at {path}; initializing as an observer.")
        log.info("attached to the codex app-server daemon at %s", path)
        sup.refresh()
        return gen

    async def _handshake(self, gen: Generation) -> None:
        """initialize → initialized → account/read, by the bridge itself: nobody else would after a reconnect."""
        sup = self._sup
        try:
            await sup.session.initialize(gen)
            await sup.session.initialized(gen)
            note = (
                " Warning: this daemon took the bridge's initialize as its originator (see docs/attach.md)."
                if sup.session.originator_imposed
                else ""
            )
            sup.info(
                f"Attached to the codex app-server daemon at {gen.conn.where} as an observer; "
                f"it reports {sup.session.auth.state}.{note}"
            )
        except BridgeError as exc:
            if sup.is_current(gen):
                sup.error(f"The handshake with the codex app-server daemon failed: {exc.message}")
        sup.refresh()

    async def beside(self, gen: Generation) -> None:
        """Follow the daemon's threads over ``gen`` once the handshake is done."""
        while gen.handshake is not Handshake.INITIALIZED:
            await anyio.sleep(0.05)
        await self.follower.run(gen.client)
