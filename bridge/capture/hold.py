"""Batches held in memory while the store cannot be written: bounded, oldest dropped first.

Pure (no I/O, no clock): the pipeline pushes each batch it could not commit
with its size, takes them back oldest first when writes work again, and hears
which batches were dropped to stay within ``limit_bytes``. A drop is a counted
gap; the threads it touched are remembered so they can be reconciled from a
snapshot afterwards.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

import msgspec

T = TypeVar("T")

DEFAULT_LIMIT_BYTES = 64 * 1024 * 1024


class Gap(msgspec.Struct):
    """What was dropped since the last :meth:`HoldQueue.take_gap`."""

    batches: int = 0
    units: int = 0  # frames / events
    bytes: int = 0
    threads: set[str] = msgspec.field(default_factory=set)


class HoldQueue(Generic[T]):
    def __init__(self, limit_bytes: int = DEFAULT_LIMIT_BYTES) -> None:
        if limit_bytes < 0:
            raise ValueError("limit_bytes must be >= 0")
        self.limit_bytes = limit_bytes
        self._items: deque[tuple[T, int, int]] = deque()
        self.bytes = 0
        self.dropped_batches = 0  # since start (metrics)
        self.dropped_units = 0
        self._gap = Gap()

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def push(self, item: T, size: int, units: int, threads_of: Callable[[T], Iterable[str]]) -> list[T]:
        """Hold ``item`` (newest); drop the oldest while over the limit. Returns what was dropped.

        The newest batch is kept even when it alone is over the limit: the
        most recent capture is what a host looks at first.
        """
        self._items.append((item, size, units))
        self.bytes += size
        dropped: list[T] = []
        while self.bytes > self.limit_bytes and len(self._items) > 1:
            old, old_size, old_units = self._items.popleft()
            self.bytes -= old_size
            self.dropped_batches += 1
            self.dropped_units += old_units
            self._gap.batches += 1
            self._gap.units += old_units
            self._gap.bytes += old_size
            self._gap.threads.update(threads_of(old))
            dropped.append(old)
        return dropped

    def peek(self) -> T:
        return self._items[0][0]

    def pop(self) -> T:
        """The oldest held batch, once it is committed."""
        item, size, _ = self._items.popleft()
        self.bytes -= size
        return item

    def take_gap(self) -> Gap:
        """The gap so far (reset): what to reconcile once the held batches are committed."""
        gap, self._gap = self._gap, Gap()
        return gap
