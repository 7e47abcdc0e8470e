"""The restart policy as tables: the crash-loop boundary and the backoff."""

from __future__ import annotations

import pytest

from bridge.sidecar.policy import CrashWindow, backoff_delay, record_exit


def replay(times: list[float]) -> list[tuple[int, bool]]:
    """(attempts, crash_loop) after each unexpected exit at ``times``."""
    window = CrashWindow()
    out = []
    for t in times:
        decision = record_exit(window, t, 0.5)
        window = decision.window
        out.append((decision.attempts, decision.crash_loop))
    return out


@pytest.mark.parametrize(
    ("times", "expected"),
    [
        # exits 1 and 2 are restarted, the third inside 60 s is not
        ([0.0, 1.0, 2.0], [(1, False), (2, False), (3, True)]),
        ([0.0, 30.0, 59.999], [(1, False), (2, False), (3, True)]),
        # exactly 60 s later the first exit has left the window
        ([0.0, 30.0, 60.0], [(1, False), (2, False), (2, False)]),
        ([0.0, 61.0, 122.0], [(1, False), (1, False), (1, False)]),
        # two exits spread out, then a quick pair: only what is inside the window counts
        ([0.0, 50.0, 100.0, 105.0], [(1, False), (2, False), (2, False), (3, True)]),
    ],
)
def test_crash_loop_boundary(times: list[float], expected: list[tuple[int, bool]]) -> None:
    assert replay(times) == expected


def test_stable_run_clears_the_count() -> None:
    window = record_exit(record_exit(CrashWindow(), 0.0, 0.0).window, 10.0, 0.0).window
    assert window.count(10.0) == 2
    assert window.count(59.9) == 2
    assert window.count(60.0) == 1
    assert window.count(70.0) == 0
    assert window.next_expiry(10.0) == 60.0
    assert window.next_expiry(70.0) is None


def test_crash_loop_decision_has_no_delay() -> None:
    window = CrashWindow()
    for t in (0.0, 1.0):
        window = record_exit(window, t, 0.9).window
    decision = record_exit(window, 2.0, 0.9)
    assert decision.crash_loop and decision.delay == 0.0


@pytest.mark.parametrize(
    ("attempt", "jitter", "expected"),
    [
        (1, 0.0, 0.125),
        (1, 1.0, 0.25),
        (2, 0.0, 0.25),
        (2, 0.5, 0.375),
        (3, 1.0, 1.0),
        (10, 1.0, 10.0),  # capped
        (10, 0.0, 5.0),
        (1, 7.0, 0.25),  # out-of-range jitter is clamped
        (1, -1.0, 0.125),
    ],
)
def test_backoff(attempt: int, jitter: float, expected: float) -> None:
    assert backoff_delay(attempt, jitter) == pytest.approx(expected)


def test_backoff_grows_until_the_cap() -> None:
    delays = [backoff_delay(n, 1.0) for n in range(1, 12)]
    assert delays == sorted(delays)
    assert max(delays) == 10.0
