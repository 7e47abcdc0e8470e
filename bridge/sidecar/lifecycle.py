"""Pure sequencing of the supervisor: start, spawn, exit, restart, reconnect, stop, config changes.

The supervisor does the I/O (spawning, connecting, waiting out a delay) and
asks this machine what each event means; the machine holds no clock and no
randomness of its own (callers pass ``now`` and a uniform ``jitter``), so every
sequence is a row of a table (tests/sidecar/test_lifecycle_table.py). The
numbers come from :mod:`.policy` (crash window, backoff, spawn budget) and
:mod:`.reconnect` (attach mode's capped backoff).

Phases: ``inactive``, ``starting`` (a spawn or a connection under way, or a
restart / reconnect waiting out its delay), ``up`` (a connection lives; the
host sees ``running`` or ``degraded``), ``stopping`` and ``crash_loop``.
``token`` changes with every host ``start``/``stop`` and kill switch: a pending
restart that finds another token was superseded.
"""

from __future__ import annotations

from typing import Literal

import msgspec
from msgspec.structs import replace

from bridge.sidecar import policy
from bridge.sidecar.reconnect import reconnect_delay
from bridge.sidecar.status import CRASH_LOOP, INACTIVE, STARTING, STOPPING

UP = "up"

StartRefusal = Literal["kill_switch", "other_mode"]
ExitAction = Literal["not_restarted", "crash_loop", "restart"]
RestartAction = Literal["superseded", "kill_switch", "go"]


class ExitVerdict(msgspec.Struct, frozen=True):
    """What an unexpected exit of a spawned codex leads to."""

    action: ExitAction
    attempts: int = 0  # unexpected exits inside the window, this one included
    delay: float = 0.0  # before the restart


class Lifecycle(msgspec.Struct, frozen=True):
    phase: str = INACTIVE
    connection: str | None = None  # the mode of the current start (None: stopped)
    window: policy.CrashWindow = msgspec.field(default_factory=policy.CrashWindow)
    spawns: policy.SpawnBudget = msgspec.field(default_factory=policy.SpawnBudget)  # restarts and host starts share it
    token: int = 0

    # --- the host's start and stop --------------------------------------------------------

    def start_refusal(self, mode: str, *, kill_switch: bool) -> StartRefusal | None:
        """Why ``start(mode)`` is refused now, if it is."""
        if kill_switch:
            return "kill_switch"
        if self.connection is not None and self.connection != mode and self.phase != INACTIVE:
            return "other_mode"
        return None

    def start(self, mode: str) -> Lifecycle:
        """A host start: supersedes a pending restart and leaves ``crash_loop`` (the window starts over)."""
        return replace(self, phase=STARTING, connection=mode, window=policy.CrashWindow(), token=self.token + 1)

    def stop_requested(self) -> Lifecycle:
        """A host stop (or the bridge's): nothing pending may restart or reconnect after it."""
        return replace(self, token=self.token + 1)

    def stopping(self, spawned_at: float | None) -> Lifecycle:
        """Stopping a live connection; a process stopped while alive gives its spawn back (not a crash)."""
        spawns = policy.refund_spawn(self.spawns, spawned_at) if spawned_at is not None else self.spawns
        return replace(self, phase=STOPPING, spawns=spawns)

    def stopped(self) -> Lifecycle:
        return replace(self, phase=INACTIVE, connection=None, window=policy.CrashWindow())

    # --- spawning and connecting ----------------------------------------------------------

    def request_spawn(self, now: float) -> policy.SpawnDecision:
        """May codex be spawned at ``now`` (the spawn budget)? Nothing changes until :meth:`spawned`."""
        return policy.request_spawn(self.spawns, now)

    def spawned(self, decision: policy.SpawnDecision) -> Lifecycle:
        """The process exists: it uses the budget entry the decision made (a missing binary costs nothing)."""
        return replace(self, phase=UP, spawns=decision.budget)

    def connected(self) -> Lifecycle:
        return replace(self, phase=UP)

    def spawn_refused(self) -> Lifecycle:
        """The spawn budget said no: ``crash_loop`` until it allows a spawn again."""
        return replace(self, phase=CRASH_LOOP)

    def spawn_failed(self) -> Lifecycle:
        return replace(self, phase=INACTIVE)

    # --- exits ----------------------------------------------------------------------------

    def unexpected_exit(self, now: float, jitter: float, *, kill_switch: bool) -> tuple[Lifecycle, ExitVerdict]:
        """A spawned codex died: not restarted (kill switch), ``crash_loop``, or restarted after a delay."""
        if kill_switch:
            return replace(self, phase=INACTIVE), ExitVerdict("not_restarted")
        decision = policy.record_exit(self.window, now, jitter)
        if decision.crash_loop:
            return replace(self, phase=CRASH_LOOP, window=decision.window), ExitVerdict("crash_loop", decision.attempts)
        verdict = ExitVerdict("restart", decision.attempts, decision.delay)
        return replace(self, phase=STARTING, window=decision.window), verdict

    def restart_due(self, token: int, *, kill_switch: bool) -> tuple[Lifecycle, RestartAction]:
        """The delay of the restart taken with ``token`` is over: does it still happen?"""
        if token != self.token or self.phase != STARTING:
            return self, "superseded"
        if kill_switch:
            return replace(self, phase=INACTIVE), "kill_switch"
        return self, "go"

    # --- attach mode: the connection to the daemon ---------------------------------------

    def connection_failed(self, failures: int, jitter: float) -> tuple[Lifecycle, float]:
        """Connecting failed for the ``failures``-th time in a row: try again after the returned delay."""
        return replace(self, phase=STARTING), reconnect_delay(failures, jitter)

    def connection_lost(self, jitter: float) -> tuple[Lifecycle, float]:
        """The daemon closed the connection: a daemon that restarts is not a crash loop; reconnect."""
        return replace(self, phase=STARTING), reconnect_delay(1, jitter)

    def reconnect_ended(self, *, connected: bool) -> Lifecycle:
        """The kill switch ended the reconnect loop: without a connection there is nothing left."""
        return self if connected else replace(self, phase=INACTIVE)

    # --- config ---------------------------------------------------------------------------

    def config_changed(self, *, codex_changed: bool, kill_switch_on: bool, connected: bool) -> Lifecycle:
        """A changed ``codex.*`` is a new attempt (the spawn budget starts over); the kill switch turned on
        cancels what is pending (a restart that has no process yet will not happen)."""
        out = replace(self, spawns=policy.SpawnBudget()) if codex_changed else self
        if kill_switch_on:
            out = replace(out, token=out.token + 1)
            if out.phase == STARTING and not connected:
                out = replace(out, phase=INACTIVE)
        return out

    # --- what the host sees ---------------------------------------------------------------

    def restart_attempts(self, now: float) -> int:
        """In ``crash_loop`` the count that tripped it stays visible until a stop or start."""
        return len(self.window.exits) if self.phase == CRASH_LOOP else self.window.count(now)
