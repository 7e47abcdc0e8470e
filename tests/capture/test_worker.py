"""The capture thread: it takes queued entries itself, in order and in bounded batches, tells the loop
only what the loop waits for, and stops after the batch it is in."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
import pytest

from bridge.capture.worker import IntakeStopped, IntakeThread


class Recorder:
    """A handler that records each batch and the thread it ran on; ``gate`` holds it while cleared."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.threads: set[str] = set()
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def __call__(self, batch: list[int]) -> None:
        self.entered.set()
        self.gate.wait(5)
        self.threads.add(threading.current_thread().name)
        self.batches.append(batch)


@asynccontextmanager
async def running(worker: IntakeThread[int]) -> AsyncIterator[None]:
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker.run)
        await anyio.sleep(0)  # run() has started its thread
        yield
        tg.cancel_scope.cancel()


async def test_entries_are_handled_in_order_in_batches_of_at_most_max_batch() -> None:
    recorder = Recorder()
    worker = IntakeThread(recorder, max_batch=4, name="test-capture")
    for n in range(10):  # all queued before the thread starts: it takes them 4 at a time
        worker.put(n)
    assert worker.pending == 10
    async with running(worker):
        await worker.settled()
    assert recorder.batches == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert recorder.threads == {"test-capture"} and worker.pending == 0


async def test_settled_waits_for_what_was_put_before_it_not_after() -> None:
    recorder = Recorder()
    worker = IntakeThread(recorder, max_batch=100)
    async with running(worker):
        recorder.gate.clear()
        worker.put(1)
        await anyio.to_thread.run_sync(recorder.entered.wait, 5)
        worker.put(2)  # queued behind the batch the handler is in
        settled = anyio.Event()

        async def wait() -> None:
            await worker.settled()
            settled.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait)
            await anyio.sleep(0.1)
            assert not settled.is_set()  # the handler still holds entry 1
            recorder.gate.set()
        assert recorder.batches[0] == [1]
        assert [n for batch in recorder.batches for n in batch] == [1, 2]


async def test_a_call_runs_on_the_thread_between_the_batches_put_around_it() -> None:
    recorder = Recorder()
    worker = IntakeThread(recorder, max_batch=100, name="test-capture")
    async with running(worker):
        recorder.gate.clear()
        worker.put(1)
        await anyio.to_thread.run_sync(recorder.entered.wait, 5)
        worker.put(2)
        seen: list[list[int]] = []

        def snapshot() -> str:
            seen.append([n for batch in recorder.batches for n in batch])
            return threading.current_thread().name

        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: _call_and_put(worker, snapshot))
            await anyio.sleep(0.05)
            recorder.gate.set()
        await worker.settled()
    assert seen == [[1, 2]]  # after what was put before the call, before what was put after it
    assert [n for batch in recorder.batches for n in batch] == [1, 2, 3]


async def _call_and_put(worker: IntakeThread[int], fn: Callable[[], str]) -> None:
    name = await worker.call(fn)
    assert name == "test-capture"
    worker.put(3)


async def test_a_calls_error_comes_back_and_the_thread_lives_on() -> None:
    def boom() -> None:
        raise ValueError("boom")

    worker: IntakeThread[int] = IntakeThread(Recorder(), max_batch=10)
    async with running(worker):
        with pytest.raises(ValueError, match="boom"):
            await worker.call(boom)
        assert await worker.call(lambda: 7) == 7


async def test_a_failing_handler_loses_its_batch_but_not_the_thread() -> None:
    handled: list[list[int]] = []

    def handler(batch: list[int]) -> None:
        if 0 in batch:
            raise RuntimeError("a bug")
        handled.append(batch)

    worker = IntakeThread(handler, max_batch=1)
    async with running(worker):
        worker.put(0)
        worker.put(1)
        await worker.settled()
    assert handled == [[1]]


async def test_stopping_waits_for_the_batch_in_hand_and_leaves_the_rest() -> None:
    """A transaction is never abandoned half-way: run() returns once the handler is out of its batch."""
    recorder = Recorder()
    worker = IntakeThread(recorder, max_batch=1)
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker.run)
        await anyio.sleep(0)
        recorder.gate.clear()
        worker.put(1)
        worker.put(2)
        await anyio.to_thread.run_sync(recorder.entered.wait, 5)
        threading.Timer(0.2, recorder.gate.set).start()
        tg.cancel_scope.cancel()
    assert recorder.batches == [[1]] and worker.pending == 1


async def test_a_back_off_ends_when_the_thread_is_told_to_stop() -> None:
    woke: list[bool] = []

    def handler(batch: list[int]) -> None:
        woke.append(worker.wait_stopping(30))

    worker = IntakeThread(handler, max_batch=1)
    with anyio.fail_after(9):  # 3x the slack of a 3 s deadline, far below the 30 s back-off
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker.run)
            await anyio.sleep(0)
            worker.put(1)
            await anyio.sleep(0.1)
            tg.cancel_scope.cancel()
    assert woke == [True]


async def test_a_call_queued_behind_the_batch_in_hand_does_not_hold_up_the_stop() -> None:
    """Cancelled together (the bridge stopping), a caller whose call has not begun leaves at once, and
    the call never runs; stopping still waits for the batch in hand."""
    recorder = Recorder()
    worker = IntakeThread(recorder, max_batch=1)
    ran: list[bool] = []
    with anyio.fail_after(9):
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker.run)
            await anyio.sleep(0)
            recorder.gate.clear()
            worker.put(1)
            await anyio.to_thread.run_sync(recorder.entered.wait, 5)
            tg.start_soon(worker.call, lambda: ran.append(True))
            await anyio.sleep(0.05)
            threading.Timer(0.2, recorder.gate.set).start()
            tg.cancel_scope.cancel()
    assert recorder.batches == [[1]] and ran == []


async def test_whoever_still_waits_when_the_thread_stops_is_told_so() -> None:
    recorder = Recorder()
    worker = IntakeThread(recorder, max_batch=1)
    outcomes: list[str] = []

    async def wait_for(what: str, fn: Callable[[], Awaitable[object]]) -> None:
        try:
            await fn()
            outcomes.append(f"{what} done")
        except IntakeStopped as exc:
            assert exc.code == -32002
            outcomes.append(f"{what} stopped")

    async with anyio.create_task_group() as waiting, anyio.create_task_group() as running_group:
        running_group.start_soon(worker.run)
        await anyio.sleep(0)
        recorder.gate.clear()
        worker.put(1)
        await anyio.to_thread.run_sync(recorder.entered.wait, 5)
        worker.put(2)  # never handled: the thread stops after entry 1
        waiting.start_soon(wait_for, "settled", worker.settled)
        waiting.start_soon(wait_for, "call", lambda: worker.call(lambda: None))
        await anyio.sleep(0.05)
        threading.Timer(0.2, recorder.gate.set).start()
        running_group.cancel_scope.cancel()
    assert sorted(outcomes) == ["call stopped", "settled stopped"]
    with pytest.raises(IntakeStopped):
        await worker.settled()  # entry 2 waits for a run that is not there


async def test_a_second_run_is_not_stopped_by_the_token_the_first_left_behind() -> None:
    recorder = Recorder()
    worker = IntakeThread(recorder, max_batch=10)
    async with anyio.create_task_group() as tg:  # stopped while busy: its stop token stays queued
        tg.start_soon(worker.run)
        await anyio.sleep(0)
        recorder.gate.clear()
        worker.put(1)
        await anyio.to_thread.run_sync(recorder.entered.wait, 5)
        threading.Timer(0.2, recorder.gate.set).start()
        tg.cancel_scope.cancel()
    async with running(worker):
        worker.put(2)
        with anyio.fail_after(9):
            await worker.settled()
    assert [n for batch in recorder.batches for n in batch] == [1, 2]
