"""The hold of batches the store could not take: bounded, oldest dropped first, gaps counted (pure)."""

from __future__ import annotations

import pytest

from bridge.capture.hold import HoldQueue


def threads(item: str) -> set[str]:
    return {f"thread-of-{item}"}


def test_held_batches_come_back_oldest_first() -> None:
    q: HoldQueue[str] = HoldQueue(100)
    for name in ("a", "b", "c"):
        assert q.push(name, 10, 2, threads) == []
    assert len(q) == 3 and q.bytes == 30
    assert [q.pop() for _ in range(3)] == ["a", "b", "c"]
    assert not q and q.bytes == 0
    gap = q.take_gap()
    assert (gap.batches, gap.units, gap.bytes, gap.threads) == (0, 0, 0, set())


def test_past_the_bound_the_oldest_are_dropped_as_a_counted_gap() -> None:
    q: HoldQueue[str] = HoldQueue(25)
    q.push("a", 10, 3, threads)
    q.push("b", 10, 4, threads)
    dropped = q.push("c", 10, 5, threads)  # 30 > 25: "a" goes
    assert dropped == ["a"]
    assert q.bytes == 20 and len(q) == 2
    assert q.push("d", 20, 1, threads) == ["b", "c"]  # 40 > 25, then 30 > 25
    assert [q.pop()] == ["d"]
    assert (q.dropped_batches, q.dropped_units) == (3, 12)
    gap = q.take_gap()
    assert (gap.batches, gap.units, gap.bytes) == (3, 12, 30)
    assert gap.threads == {"thread-of-a", "thread-of-b", "thread-of-c"}
    assert q.take_gap().batches == 0  # taken: the next gap starts empty, the totals stay
    assert q.dropped_batches == 3


def test_the_newest_batch_is_kept_even_alone_over_the_bound() -> None:
    q: HoldQueue[str] = HoldQueue(5)
    assert q.push("big", 50, 1, threads) == []
    assert q.push("next", 1, 1, threads) == ["big"]
    assert q.peek() == "next" and q.bytes == 1


@pytest.mark.parametrize("limit", [0, 1, 64, 1000])
def test_the_bound_holds_after_every_push(limit: int) -> None:
    q: HoldQueue[int] = HoldQueue(limit)
    pushed = 0
    for i in range(200):
        size = (i * 37) % 50 + 1
        q.push(i, size, 1, lambda item: {str(item % 7)})
        pushed += 1
        assert q.bytes <= limit or len(q) == 1
    assert len(q) + q.dropped_batches == pushed
    kept = [q.pop() for _ in range(len(q))]
    assert kept == sorted(kept) and kept[-1] == 199  # order kept, the newest always survives


def test_a_negative_bound_is_refused() -> None:
    with pytest.raises(ValueError):
        HoldQueue(-1)
