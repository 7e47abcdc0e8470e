"""The attach reconnect backoff: exponential, jittered, never more than 30 s apart, forever."""

from __future__ import annotations

import pytest

from bridge.sidecar.reconnect import RECONNECT_CAP, reconnect_delay


@pytest.mark.parametrize(
    ("attempt", "jitter", "delay"),
    [
        (1, 0.0, 0.25),
        (1, 1.0, 0.5),
        (2, 0.0, 0.5),
        (3, 0.5, 1.5),
        (6, 1.0, 16.0),
        (7, 0.0, 15.0),  # 32 s step capped at 30: half of it with no jitter
        (7, 1.0, 30.0),
        (8, 0.999, 29.985),
        (1000, 1.0, 30.0),
        (10**9, 0.5, 22.5),  # forever: no overflow however long the daemon stays away
        (0, 0.0, 0.25),  # defensive: treated as the first attempt
        (2, -1.0, 0.5),  # jitter clamped into [0, 1]
        (2, 7.0, 1.0),
    ],
)
def test_reconnect_delay_table(attempt: int, jitter: float, delay: float) -> None:
    assert reconnect_delay(attempt, jitter) == pytest.approx(delay)


def test_the_cap_holds_for_every_attempt_and_jitter() -> None:
    assert RECONNECT_CAP == 30.0
    for attempt in range(1, 200):
        for jitter in (0.0, 0.25, 0.5, 0.999999):
            delay = reconnect_delay(attempt, jitter)
            assert 0 < delay <= 30.0


def test_delays_grow_until_the_cap() -> None:
    steps = [reconnect_delay(n, 1.0) for n in range(1, 10)]
    assert steps == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
