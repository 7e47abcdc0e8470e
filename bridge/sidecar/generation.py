"""The pieces of one supervisor generation: options, the generation record, spawn helpers.

A *generation* is one connection to codex: a spawned ``codex app-server`` or
one WebSocket connection to the user's daemon. Each has its own JSON-RPC
client and handshake; callbacks from an older generation are ignored.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import anyio
import msgspec

from bridge import __version__, errors
from bridge.errors import BridgeError
from bridge.sidecar import policy
from bridge.sidecar.auth import Handshake
from bridge.sidecar.connection import CodexConnection
from bridge.sidecar.process import SpawnSpec, StderrRing
from bridge.sidecar.rpc import RpcClient
from bridge.sidecar.rpc_types import RpcCounters


class SupervisorOptions(msgspec.Struct):
    """Timings and hooks; the defaults are the product's, tests shorten them."""

    stop_eof_grace: float = 1.0
    stop_term_grace: float = 0.5
    stop_kill_grace: float = 0.5
    start_settle: float = 0.3  # how long `start` watches for an immediate exit
    liveness_idle: float = 20.0  # probe the sidecar after this much silence
    confirm_wait: float = 5.0  # how long a login/cancel waits for the sidecar's notification
    tick: float = 1.0  # status re-evaluation period (window expiry, config changes)
    environ: Mapping[str, str] | None = None  # base environment (default: os.environ)
    rng: Callable[[], float] = random.random
    clock: Callable[[], float] = time.monotonic
    client_name: str = "capture_bridge"
    client_title: str = "capture-bridge"
    client_version: str = __version__
    attach_wait: float = 3.0  # how long start("attach") waits for the daemon's handshake
    attach_connect_timeout: float = 5.0
    idle_unsubscribe: float = 600.0  # attach: unsubscribe a thread idle this long
    # Extra codex arguments computed at each spawn (the receiver's OTEL overrides); they go
    # after codex.args (whose first entries may be a script for an interpreter binary) and are
    # left out when codex.args already set codex's ``otel.*`` themselves.
    extra_args: Callable[[], list[str]] | None = None
    # How a spawn opens its connection: the real process by default; tests hand an in-memory one.
    spawn: Callable[[SpawnSpec, int], Awaitable[CodexConnection]] | None = None
    # How attach mode connects to the daemon ``(socket_path, max_frame_bytes, timeout)``: its socket by
    # default (raising WebSocketConnectError when it is not there); tests hand an in-memory daemon.
    connect: Callable[[str, int, float], Awaitable[CodexConnection]] | None = None


class Generation(msgspec.Struct):
    """One connection to codex (a spawned process or the daemon's socket) and its client."""

    number: int
    conn: CodexConnection
    client: RpcClient
    handshake: Handshake = Handshake.NOT_STARTED
    alive: bool = True
    expected_exit: bool = False
    exited: anyio.Event = msgspec.field(default_factory=anyio.Event)
    exit_code: int | None = None
    spawned_at: float | None = None  # monotonic; the spawn budget entry it used


def sets_otel(args: list[str]) -> bool:
    """Whether ``-c otel.…`` overrides are among ``args`` (as ``-c k=v`` or ``-ck=v``)."""
    for index, arg in enumerate(args):
        value = args[index + 1] if arg == "-c" and index + 1 < len(args) else arg[2:] if arg.startswith("-c") else ""
        if value.startswith("otel.") or value.startswith("otel="):
            return True
    return False


class SpawnBudgetExhausted(BridgeError):
    """-32015 with ``retryAfterMs``: the crash-loop budget allows no spawn now."""

    def __init__(self, budget: policy.SpawnBudget, retry_after: float) -> None:
        retry_ms = max(1, math.ceil(retry_after * 1000))
        super().__init__(
            errors.SIDECAR_SPAWN_FAILED,
            f"codex app-server was spawned {len(budget.spawns)} times within {budget.window:g} s "
            f"(the crash-loop budget is {budget.limit}), so it is not spawned again now. Retry in "
            f"{retry_ms / 1000:.1f} s, or fix the cause and change codex.* in the config (that resets the budget).",
            retryAfterMs=retry_ms,
            spawnBudget=budget.limit,
            windowMs=int(budget.window * 1000),
        )


class Totals:
    """The client counters of every generation that ended, so the metrics cover them all."""

    def __init__(self) -> None:
        self.counters = RpcCounters()
        self.stderr_dropped = 0

    def fold(self, c: RpcCounters, stderr: StderrRing | None) -> None:
        """Add a finished generation's counters (and zero them, so nothing counts twice)."""
        t = self.counters
        t.timeouts += c.timeouts
        t.protocol_errors += c.protocol_errors
        t.oversized_frames += c.oversized_frames
        t.notifications += c.notifications
        t.server_requests_unhandled += c.server_requests_unhandled
        for method, count in c.unknown_notifications.items():
            t.unknown_notifications[method] = t.unknown_notifications.get(method, 0) + count
        c.timeouts = c.protocol_errors = c.oversized_frames = c.notifications = c.server_requests_unhandled = 0
        c.unknown_notifications.clear()
        if stderr is not None:
            self.stderr_dropped += stderr.dropped
            stderr.dropped = 0

    def metrics(self, client: RpcClient | None, stderr: StderrRing | None, restarts: int) -> dict[str, Any]:
        """The totals plus the live generation's ``client`` and ``stderr``."""
        totals = self.counters
        live = client.counters if client is not None else RpcCounters()
        unknown = dict(totals.unknown_notifications)
        for method, count in live.unknown_notifications.items():
            unknown[method] = unknown.get(method, 0) + count
        return {
            "rpcTimeoutsTotal": totals.timeouts + live.timeouts,
            "restartEventsTotal": restarts,
            "pendingRpcs": client.pending_count if client is not None else 0,
            "sidecarStderrBuffered": stderr.buffered if stderr is not None else 0,
            "sidecarStderrDropped": self.stderr_dropped + (stderr.dropped if stderr is not None else 0),
            "sidecarProtocolErrorsTotal": totals.protocol_errors + live.protocol_errors,
            "sidecarOversizedFramesTotal": totals.oversized_frames + live.oversized_frames,
            "sidecarNotificationsTotal": totals.notifications + live.notifications,
            "sidecarServerRequestsUnhandledTotal": totals.server_requests_unhandled + live.server_requests_unhandled,
            "unknownNotificationsByMethod": unknown,
        }
