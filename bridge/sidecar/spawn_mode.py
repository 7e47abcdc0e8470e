"""Spawn mode: the bridge spawns ``codex app-server`` and restarts it after an unexpected exit.

The host drives the handshake (``codex_app_server_initialize``, then
``…_initialized``, in order). When a process dies unasked, the pure
:class:`.lifecycle.Lifecycle` says what follows: nothing (the kill switch is
on), ``crash_loop`` (the third unexpected exit within the window), or a restart
after a backoff delay; a restarted process runs the whole handshake again by
itself (:class:`.events.Rehandshaken`). Every spawn, the host's and a
restart's, draws from one spawn budget.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

import anyio

from bridge import errors
from bridge.errors import BridgeError
from bridge.sidecar.auth import Handshake
from bridge.sidecar.connection import Kind, SpawnedConnection
from bridge.sidecar.events import Rehandshaken
from bridge.sidecar.generation import Generation, SpawnBudgetExhausted, sets_otel
from bridge.sidecar.lifecycle import UP
from bridge.sidecar.process import build_spec, resolve_binary

if TYPE_CHECKING:
    from bridge.sidecar.supervisor import Supervisor

log = logging.getLogger("bridge.sidecar")


def stderr_tail(gen: Generation, count: int) -> str:
    """The last ``count`` stderr lines of ``gen``'s process, joined (a daemon's stderr is its own)."""
    stderr = gen.conn.stderr
    return "; ".join(stderr.tail(count)) if stderr is not None else ""


class SpawnMode:
    """Spawning codex, the host's handshake, and restarts (see the module docstring)."""

    kind: Kind = "spawn"
    observer = False

    def __init__(self, sup: Supervisor) -> None:
        self._sup = sup
        self.binary: str | None = None  # the last binary spawned
        self.restarts = 0  # automatic restarts that spawned a process (restartEventsTotal)
        self._followed: list[str] = []

    @property
    def followed(self) -> list[str]:
        return list(self._followed)

    def thread_followed(self, thread_id: str) -> None:
        if thread_id not in self._followed:
            self._followed.append(thread_id)

    def where(self) -> str | None:
        return self.binary

    def stop_pending(self) -> None:
        return None  # a pending restart is superseded by the lifecycle's token

    async def beside(self, gen: Generation) -> None:
        return None

    # --- the host's start and handshake ----------------------------------------------------

    async def start(self) -> None:
        """Spawn codex app-server; returns once the process is up (``running``). Idempotent while up."""
        sup = self._sup
        async with sup.lock:
            sup.commands.check_startable("spawn")
            if sup.lc.phase == UP and sup.gen is not None:
                return
            sup.begin_start("spawn", "Starting codex app-server.")
            gen = await self._spawn_noting()
        with anyio.move_on_after(sup.options.start_settle):
            await gen.exited.wait()
        if gen.exited.is_set():
            tail = stderr_tail(gen, 3)
            raise BridgeError(
                errors.SIDECAR_SPAWN_FAILED,
                f"codex app-server ({gen.conn.where}) exited with code {gen.exit_code} right after it "
                f"started{': ' + tail if tail else ''}. Check the binary and codex.args.",
                path=gen.conn.where,
                exitCode=gen.exit_code,
            )

    async def host_initialize(self, gen: Generation) -> None:
        self._sup.commands.require_order("initialize", gen)
        if gen.handshake in (Handshake.ANSWERED, Handshake.INITIALIZED):
            self._sup.info("initialize was already answered by this codex app-server process.")
            self._sup.refresh()
            return
        await self._sup.session.initialize(gen)

    async def host_initialized(self, gen: Generation) -> None:
        self._sup.commands.require_order("initialized", gen)
        await self._sup.session.initialized(gen)

    # --- spawning ------------------------------------------------------------------------------

    async def spawn(self) -> Generation:
        """Start a new generation (the caller holds the lifecycle lock); -32015 when the budget says no."""
        sup = self._sup
        cfg = sup.config.current.codex
        opts = sup.options
        environ = opts.environ if opts.environ is not None else os.environ
        binary = resolve_binary(cfg.binary_path, environ)
        self.binary = binary
        extra = opts.extra_args() if opts.extra_args is not None else []
        if sets_otel(cfg.args):
            extra = []  # the configured codex.args say where codex's own OTEL goes: they win
        spec = build_spec(binary, [*cfg.args, *extra], cfg.env, cfg.home, environ)
        now = opts.clock()
        decision = sup.lc.request_spawn(now)
        if not decision.allowed:
            raise SpawnBudgetExhausted(sup.lc.spawns, decision.retry_after)
        max_frame_bytes = sup.config.current.limits.max_frame_bytes
        if opts.spawn is not None:
            conn = await opts.spawn(spec, max_frame_bytes)
        else:
            conn = await SpawnedConnection.spawn(spec, max_frame_bytes=max_frame_bytes)
        sup.lc = sup.lc.spawned(decision)  # only a process that exists uses the budget
        gen = sup.adopt(conn, self)
        gen.spawned_at = now
        sup.info(f"codex app-server started (pid {conn.pid}); call codex_app_server_initialize next.")
        log.info("codex app-server started: pid %s, binary %s", conn.pid, binary)
        sup.refresh()
        return gen

    async def _spawn_noting(self, *, refused: str = "", failed: str = "") -> Generation:
        """:meth:`spawn`; a refusal (the budget) or a failure moves the lifecycle on and becomes
        ``lastError``, after the prefix ``refused`` or ``failed``, before it is raised."""
        sup = self._sup
        try:
            return await self.spawn()
        except SpawnBudgetExhausted as exc:
            sup.lc = sup.lc.spawn_refused()
            sup.error(refused + exc.message)
            sup.refresh()
            raise
        except BridgeError as exc:
            sup.lc = sup.lc.spawn_failed()
            sup.error(failed + exc.message)
            sup.refresh()
            raise

    # --- an unexpected exit ------------------------------------------------------------------

    async def ended(self, gen: Generation) -> None:
        """The current process exited unasked: reap, report, and restart if the lifecycle says so."""
        sup = self._sup
        code = gen.exit_code
        with anyio.CancelScope(shield=True):
            await gen.conn.stop(eof_grace=0.0, term_grace=0.2, kill_grace=0.5)  # reap any child it left
        tail = stderr_tail(gen, 2)
        log.warning("codex app-server (pid %s) exited unexpectedly with code %s", gen.conn.pid, code)
        sup.lost(gen)
        what = f"codex app-server (pid {gen.conn.pid}) exited unexpectedly with code {code}"
        if tail:
            what += f" (stderr: {tail})"
        sup.lc, verdict = sup.lc.unexpected_exit(sup.options.clock(), sup.options.rng(), kill_switch=sup.kill_switch)
        window = sup.lc.window
        if verdict.action == "not_restarted":
            sup.error(f"{what}; not restarted because the stream kill switch is on.")
            sup.refresh()
            return
        if verdict.action == "crash_loop":
            sup.error(
                f"{what}; that is {verdict.attempts} unexpected exits within {window.window:g} s, so it is "
                "not restarted (crash_loop). Fix the cause (a codex.* config change resets the spawn budget), then "
                "start_codex_app_server."
            )
            sup.refresh()
            return
        sup.error(what + ".")
        sup.info(
            f"Restarting codex app-server in {verdict.delay:.2f} s "
            f"(unexpected exit {verdict.attempts} of {window.budget} allowed within {window.window:g} s)."
        )
        sup.refresh()
        token = sup.lc.token
        await anyio.sleep(verdict.delay)
        async with sup.lock:
            sup.lc, action = sup.lc.restart_due(token, kill_switch=sup.kill_switch)
            if action == "superseded":
                return
            if action == "kill_switch":
                sup.info("Restart cancelled: the stream kill switch is on.")
                sup.refresh()
                return
            try:
                new = await self._spawn_noting(refused=f"{what}; ", failed="Restart failed: ")
            except BridgeError:
                return
            self.restarts += 1
        await self._rehandshake(new)

    async def _rehandshake(self, gen: Generation) -> None:
        """After an automatic restart: initialize → initialized → account/read, unasked."""
        sup = self._sup
        try:
            await sup.session.initialize(gen)
            await sup.session.initialized(gen)
            sup.info(f"codex app-server restarted (pid {gen.conn.pid}) and re-handshaken.")
            sup.lifecycle_event(Rehandshaken(gen.conn.pid, gen.number))
        except BridgeError as exc:
            if sup.is_current(gen):
                sup.error(f"Automatic re-handshake after a restart failed: {exc.message}")
        sup.refresh()
