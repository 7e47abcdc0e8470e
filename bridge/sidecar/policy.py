"""Pure restart policy: exponential backoff with jitter and the crash-loop window.

No clocks, no randomness of its own: callers pass ``now`` (monotonic
seconds) and a uniform random number, so the exact boundaries are testable as
tables. The rule (docs/protocol.md §4.1): unexpected exits inside a 60 s window are
counted; exits 1 and 2 are restarted, the third trips ``crash_loop``. Exits
age out of the window, so a sidecar that ran stably for the window starts
again from zero.
"""

from __future__ import annotations

import msgspec

RESTART_BUDGET = 3
WINDOW_SECONDS = 60.0
BACKOFF_BASE = 0.25
BACKOFF_CAP = 10.0


class CrashWindow(msgspec.Struct, frozen=True):
    """Monotonic times of the unexpected exits still inside the window."""

    exits: tuple[float, ...] = ()
    window: float = WINDOW_SECONDS
    budget: int = RESTART_BUDGET

    def current(self, now: float) -> CrashWindow:
        """The window as of ``now``: exits ``window`` seconds old or older have left it."""
        kept = tuple(t for t in self.exits if now - t < self.window)
        return self if kept == self.exits else CrashWindow(kept, self.window, self.budget)

    def count(self, now: float) -> int:
        return len(self.current(now).exits)

    def next_expiry(self, now: float) -> float | None:
        """When the oldest exit inside the window leaves it (``None`` when empty)."""
        live = self.current(now).exits
        return min(live) + self.window if live else None


class ExitDecision(msgspec.Struct, frozen=True):
    window: CrashWindow
    attempts: int  # unexpected exits inside the window, this one included
    crash_loop: bool
    delay: float  # seconds to wait before the restart (0 when crash_loop)


def record_exit(window: CrashWindow, now: float, jitter: float) -> ExitDecision:
    """Count an unexpected exit at ``now`` and decide: restart after a delay, or crash loop.

    ``jitter`` is a uniform number in [0, 1).
    """
    live = window.current(now)
    updated = CrashWindow((*live.exits, now), live.window, live.budget)
    attempts = len(updated.exits)
    if attempts >= updated.budget:
        return ExitDecision(updated, attempts, True, 0.0)
    return ExitDecision(updated, attempts, False, backoff_delay(attempts, jitter))


def backoff_delay(attempt: int, jitter: float, base: float = BACKOFF_BASE, cap: float = BACKOFF_CAP) -> float:
    """Delay before restart number ``attempt`` (1-based): ``base·2^(attempt-1)``, capped, with jitter.

    The jitter spreads the delay over [50 %, 100 %] of the step ("equal jitter"),
    so restarts never come sooner than half the step and never in lockstep.
    """
    step = min(cap, base * float(1 << max(0, attempt - 1)))
    jitter = min(max(jitter, 0.0), 1.0)
    return step / 2 + (step / 2) * jitter


SPAWN_BUDGET = 3


class SpawnBudget(msgspec.Struct, frozen=True):
    """Monotonic times of the spawns still inside the window, whoever asked for them.

    Automatic restarts and the host's ``start`` calls draw from this one budget,
    so a host that retries ``start`` cannot outrun the crash-loop guard.
    """

    spawns: tuple[float, ...] = ()
    window: float = WINDOW_SECONDS
    limit: int = SPAWN_BUDGET

    def current(self, now: float) -> SpawnBudget:
        kept = tuple(t for t in self.spawns if now - t < self.window)
        return self if kept == self.spawns else SpawnBudget(kept, self.window, self.limit)


class SpawnDecision(msgspec.Struct, frozen=True):
    budget: SpawnBudget  # the budget to keep if the spawn goes ahead
    allowed: bool
    retry_after: float  # seconds until a spawn would be allowed (0 when allowed)


def request_spawn(budget: SpawnBudget, now: float) -> SpawnDecision:
    """May a process be spawned at ``now``? At most ``limit`` spawns within ``window`` seconds."""
    live = budget.current(now)
    if len(live.spawns) < live.limit:
        return SpawnDecision(SpawnBudget((*live.spawns, now), live.window, live.limit), True, 0.0)
    ordered = sorted(live.spawns)
    # The spawn that has to leave the window before one more fits.
    frees_at = ordered[len(ordered) - live.limit] + live.window
    return SpawnDecision(live, False, max(0.0, frees_at - now))


def refund_spawn(budget: SpawnBudget, spawned_at: float) -> SpawnBudget:
    """Give back the spawn made at ``spawned_at``: its process was stopped on request while alive."""
    spawns = list(budget.spawns)
    if spawned_at in spawns:
        spawns.remove(spawned_at)
    return SpawnBudget(tuple(spawns), budget.window, budget.limit)
