"""The pipeline with a store that refuses writes: batches held in order, nothing emitted before its
commit, -32040 from a drain that needs them stored, all committed (in order) when writes work again."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import anyio
import pytest

from bridge.capture.events import CaptureEvent
from bridge.capture.hold import Gap
from bridge.capture.pipeline import CapturePipeline
from bridge.store.db import StorageUnavailable
from bridge.store.health import StorageHealth


class _Db:
    def __init__(self, path: Path) -> None:
        self.path = path / "capture.sqlite3"
        self.health = StorageHealth(path)


class RefusingStore:
    """Stands in for CaptureStore: refuses every batch while ``full``; records what it committed."""

    def __init__(self, path: Path) -> None:
        self.db = _Db(path)
        self.full = False
        self.committed: list[list[str]] = []

    def apply(self, events: list[CaptureEvent]) -> list[Any]:
        if self.full:
            exc = OSError(errno.ENOSPC, "No space left on device")
            self.db.health.report(exc, "capture")
            raise StorageUnavailable(self.db.path.parent, "disk_full", "the disk is full")
        self.committed.append([e.thread_id for e in events])
        return []


def event(thread: str) -> CaptureEvent:
    return CaptureEvent(key=f"thread|{thread}", kind="thread", source="otel", method="thread/started",
                        thread_id=thread)  # fmt: skip


async def test_held_in_order_then_committed_when_writes_work(tmp_path: Path) -> None:
    store = RefusingStore(tmp_path)
    pipeline = CapturePipeline(store, lambda m, b: 0, lambda: True, hold_limit_bytes=10_000)  # type: ignore[arg-type]
    gaps: list[Gap] = []
    pipeline.on_gap = gaps.append
    async with anyio.create_task_group() as tg:
        tg.start_soon(pipeline.run)
        pipeline.feed_events([event("a")])
        await pipeline.drain()
        assert store.committed == [["a"]]
        store.full = True
        for name in ("b", "c", "d"):
            pipeline.feed_events([event(name)])
            await anyio.sleep(0.05)
        with pytest.raises(StorageUnavailable) as raised:
            await pipeline.drain()
        assert raised.value.code == -32040 and "3 captured batches are held" in raised.value.message
        assert len(pipeline.held) == 3 and store.db.health.fault is not None
        assert not await pipeline.flush_held()  # still full: nothing lost, nothing reordered
        assert len(pipeline.held) == 3
        store.full = False
        pipeline.feed_events([event("e")])  # newer than the held: waits behind them
        await anyio.sleep(0.05)
        assert store.committed == [["a"]]
        assert await pipeline.flush_held()
        await pipeline.drain()
        assert [c[0] for c in store.committed] == ["a", "b", "c", "d", "e"]
        assert pipeline.held_batches_committed == 4 and gaps == []
        tg.cancel_scope.cancel()


async def test_past_the_bound_the_gap_threads_are_handed_on_after_the_commit(tmp_path: Path) -> None:
    store = RefusingStore(tmp_path)
    pipeline = CapturePipeline(store, lambda m, b: 0, lambda: True, hold_limit_bytes=600)  # type: ignore[arg-type]
    gaps: list[Gap] = []
    pipeline.on_gap = gaps.append
    async with anyio.create_task_group() as tg:
        tg.start_soon(pipeline.run)
        store.full = True
        for name in ("t1", "t2", "t3", "t4"):
            pipeline.feed_events([event(name)])
            await anyio.sleep(0.05)
        assert pipeline.held.dropped_batches == 2 and len(pipeline.held) == 2
        store.full = False
        assert await pipeline.flush_held()
        assert [c[0] for c in store.committed] == ["t3", "t4"]
        [gap] = gaps
        assert gap.batches == 2 and gap.threads == {"t1", "t2"}
        tg.cancel_scope.cancel()
