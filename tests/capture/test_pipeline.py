"""The pipeline in-process: recorded frames in, committed events and host notifications out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from bridge.capture.pipeline import CapturePipeline
from bridge.capture.store import CaptureStore
from bridge.store.db import Database
from tests.capture.reference import notifications
from tests.support.wire import wire


async def run_pipeline(
    tmp_path: Path, batches: list[list[Any]], enabled: bool = True
) -> tuple[list[Any], CapturePipeline]:
    import json

    from bridge.host.notify import Notifier

    sent: list[tuple[str, Any]] = []

    def sink(data: bytes) -> None:
        message = json.loads(data)
        sent.append((message["method"], message["params"]))

    notifier = Notifier()
    notifier.attach(sink)
    tmp_path.mkdir(parents=True, exist_ok=True)
    pipeline = CapturePipeline(
        CaptureStore(Database(tmp_path / "c.db")), notifier.emit, lambda: enabled, notifier.emit_built
    )
    async with anyio.create_task_group() as tg:
        tg.start_soon(pipeline.run)
        for batch in batches:
            pipeline.feed(batch)
            await pipeline.drain()
        tg.cancel_scope.cancel()
    return sent, pipeline


async def test_injected_duplicates_change_nothing_stored_or_emitted(tmp_path: Path) -> None:
    frames = notifications("shell")
    once, _ = await run_pipeline(tmp_path / "a", [frames])
    twice, pipeline = await run_pipeline(tmp_path / "b", [frames, frames, frames[5:20]])
    assert [p["key"] for _, p in twice] == [p["key"] for _, p in once]
    counts = pipeline.store.counts
    assert counts["accepted"] == len(once)
    from bridge.capture.normalize import normalize

    again = sum(1 for f in frames[5:20] if normalize(f.method, bytes(f.params), f.emittedAtMs) is not None)
    assert counts["duplicate"] == len(once) + again
    log = wire(pipeline.store.decision_log(50))
    assert log[0]["decision"] == "duplicate"


async def test_kill_switch_captures_and_emits_nothing(tmp_path: Path) -> None:
    sent, pipeline = await run_pipeline(tmp_path, [notifications("chat")], enabled=False)
    assert sent == []
    assert pipeline.ignored_while_killed > 0
    assert wire(pipeline.store.list_threads(10, None)) == []


async def test_a_frame_whose_params_do_not_fit_becomes_a_parser_validation_error(tmp_path: Path) -> None:
    import msgspec

    from tests.capture.reference import Note

    bad = Note("item/completed", msgspec.Raw(b'{"threadId": 5}'), 1, b'{"method":"item/completed"}')
    sent, pipeline = await run_pipeline(tmp_path, [[bad, *notifications("chat")]])
    problems = [p for _, p in sent if p.get("type") == "ParserValidationError"]
    assert len(problems) == 1 and problems[0]["kind"] in ("schema_mismatch", "missing_fields")
    assert pipeline.parser_errors == 1
    assert any(p.get("eventType") == "turn/completed" for _, p in sent)  # the stream went on


async def test_a_failed_transaction_is_retried_and_nothing_is_lost_or_doubled(tmp_path: Path) -> None:
    import sqlite3

    import bridge.capture.pipeline as pipeline_module

    frames = notifications("shell")
    once, _ = await run_pipeline(tmp_path / "a", [frames])

    real_write, real_delay = Database.write, pipeline_module.retry_delay
    failures = {"left": 2}

    def flaky_write(self: Database, fn: Any) -> Any:
        def failing(conn: sqlite3.Connection) -> Any:
            fn(conn)  # the batch is decided (caches updated) ...
            raise sqlite3.OperationalError("disk I/O error (injected)")  # ... and its transaction fails

        if failures["left"] > 0:
            failures["left"] -= 1
            return real_write(self, failing)
        return real_write(self, fn)

    try:
        Database.write = flaky_write  # type: ignore[method-assign]
        pipeline_module.retry_delay = lambda failures: 0.0
        retried, pipeline = await run_pipeline(tmp_path / "b", [frames])
    finally:
        Database.write = real_write  # type: ignore[method-assign]
        pipeline_module.retry_delay = real_delay
    assert failures["left"] == 0
    assert [p["key"] for _, p in retried] == [p["key"] for _, p in once]
    assert pipeline.store.counts == {"accepted": len(once), "duplicate": 0, "replaced": 0, "dropped": 0}
    assert pipeline.batches_dropped == 0


async def test_a_backlog_is_committed_in_bounded_transactions_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """However much waits (the baseline fed while the capture was behind), one transaction takes at most
    MAX_WORK_PER_COMMIT entries, so a stop never waits on a transaction of the whole backlog; the frames
    are still decided and stored exactly as one feed would."""
    from bridge.capture import pipeline as pipeline_module
    from bridge.host.notify import Notifier

    frames = notifications("shell")
    once, _ = await run_pipeline(tmp_path / "a", [frames])
    monkeypatch.setattr(pipeline_module, "MAX_WORK_PER_COMMIT", 10)
    notifier = Notifier()
    notifier.attach(lambda data: None)
    (tmp_path / "b").mkdir()
    pipeline = CapturePipeline(
        CaptureStore(Database(tmp_path / "b" / "c.db")), notifier.emit, lambda: True, notifier.emit_built
    )
    for frame in frames:  # one entry a frame, all queued before the pipeline runs
        pipeline.feed([frame])
    async with anyio.create_task_group() as tg:
        tg.start_soon(pipeline.run)
        await pipeline.drain()
        tg.cancel_scope.cancel()
    assert pipeline.batches == -(-len(frames) // 10)
    assert pipeline.store.counts["accepted"] == len(once)
    assert pipeline.queued_frames == 0  # what was taken no longer counts against the sidecar reader's room


async def test_observers_get_the_committed_non_delta_events_on_the_loop_only_while_they_want_them(
    tmp_path: Path,
) -> None:
    import threading

    from bridge.host.notify import Notifier

    frames = notifications("shell")
    notifier = Notifier()
    notifier.attach(lambda data: None)
    pipeline = CapturePipeline(
        CaptureStore(Database(tmp_path / "c.db")), notifier.emit, lambda: True, notifier.emit_built
    )
    seen: list[tuple[str, list[str]]] = []
    wanted = {"on": False}
    pipeline.add_observer(
        lambda applied: seen.append((threading.current_thread().name, [a.event.kind for a in applied])),
        lambda: wanted["on"],
    )
    async with anyio.create_task_group() as tg:
        tg.start_soon(pipeline.run)
        pipeline.feed(frames[: len(frames) // 2])
        await pipeline.drain()
        await anyio.sleep(0.05)  # an observer is called soon after the commit, never before
        assert seen == []  # off: nothing handed over
        wanted["on"] = True
        pipeline.feed(frames[len(frames) // 2 :])
        await pipeline.drain()
        await anyio.sleep(0.05)
        tg.cancel_scope.cancel()
    assert seen and {name for name, _ in seen} == {threading.current_thread().name}
    kinds = [kind for _, batch in seen for kind in batch]
    assert "turn_completed" in kinds and "delta" not in kinds


async def test_a_room_wake_up_that_arrives_after_a_newer_feed_filled_the_queue_keeps_the_reader_waiting(
    tmp_path: Path,
) -> None:
    """The thread's wake-up is a callback the loop runs later: by then a feed may have filled the queue
    again, and the reader must keep waiting (the bound on memory holds)."""
    from bridge.capture import pipeline as pipeline_module

    frames = notifications("shell")
    pipeline = CapturePipeline(CaptureStore(Database(tmp_path / "c.db")), lambda m, p: 0, lambda: True)
    while pipeline.queued_frames <= pipeline_module.MAX_QUEUED_FRAMES:  # the thread is not running: all queue
        pipeline.feed(frames)
    pipeline._open_room()  # a wake-up sent when the thread took an earlier backlog, run only now
    with anyio.move_on_after(0.2) as waited:
        await pipeline.wait_for_room()
    assert waited.cancelled_caught  # still no room
