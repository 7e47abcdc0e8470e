"""Pure reconnect backoff for attach mode: capped exponential, with jitter, forever.

A daemon that is down is not a crash loop (it belongs to the user, who may
start it again at any time), so attach mode never gives up: it retries with
``base·2^(attempt-1)`` seconds, spread over [50 %, 100 %] of the step, never
more than :data:`RECONNECT_CAP` seconds apart. No clock and no randomness of
its own, so the boundaries are table-tested.
"""

from __future__ import annotations

RECONNECT_BASE = 0.5
RECONNECT_CAP = 30.0
_MAX_DOUBLINGS = 30  # keeps 2**n small however long the daemon stays away


def reconnect_delay(attempt: int, jitter: float, base: float = RECONNECT_BASE, cap: float = RECONNECT_CAP) -> float:
    """Seconds to wait before connection attempt ``attempt`` + 1 (``attempt`` failures so far, ≥ 1).

    ``jitter`` is a uniform number in [0, 1); the result is always in (0, ``cap``].
    """
    doublings = min(max(0, attempt - 1), _MAX_DOUBLINGS)
    step = min(cap, base * float(1 << doublings))
    jitter = min(max(jitter, 0.0), 1.0)
    return step / 2 + (step / 2) * jitter
