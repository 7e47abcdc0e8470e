"""The token bucket as a table: (key, time) -> wait."""

from __future__ import annotations

import pytest

from bridge.receiver.ratelimit import TokenBuckets, for_rate


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        # burst of 2 at t=0, third waits half a token at rate 2/s
        ([("k", 0.0), ("k", 0.0), ("k", 0.0)], [0.0, 0.0, 0.5]),
        # refilled after 0.5 s (one token at 2/s)
        ([("k", 0.0), ("k", 0.0), ("k", 0.5), ("k", 0.5)], [0.0, 0.0, 0.0, 0.5]),
        # keys are independent
        ([("a", 0.0), ("a", 0.0), ("b", 0.0), ("a", 0.0)], [0.0, 0.0, 0.0, 0.5]),
        # refill never exceeds the burst
        ([("k", 0.0), ("k", 100.0), ("k", 100.0), ("k", 100.0)], [0.0, 0.0, 0.0, 0.5]),
        # a clock going backwards refills nothing
        ([("k", 10.0), ("k", 10.0), ("k", 5.0)], [0.0, 0.0, 0.5]),
    ],
)
def test_token_bucket(steps: list[tuple[str, float]], expected: list[float]) -> None:
    buckets = TokenBuckets(rate=2.0, burst=2.0)
    assert [buckets.take(key, now) for key, now in steps] == pytest.approx(expected)


def test_refused_requests_do_not_spend_tokens() -> None:
    buckets = TokenBuckets(rate=1.0, burst=1.0)
    assert buckets.take("k", 0.0) == 0.0
    assert buckets.take("k", 0.5) == pytest.approx(0.5)
    assert buckets.take("k", 0.9) == pytest.approx(0.1)
    assert buckets.take("k", 1.0) == 0.0


def test_key_count_is_bounded() -> None:
    buckets = TokenBuckets(rate=1.0, burst=1.0, max_keys=3)
    for i in range(10):
        buckets.take(f"k{i}", 0.0)
    assert len(buckets) == 3


def test_policy_is_a_one_second_burst_of_the_rate() -> None:
    buckets = for_rate(500)
    assert [buckets.take("k", 0.0) for _ in range(500)] == [0.0] * 500
    assert buckets.take("k", 0.0) > 0
