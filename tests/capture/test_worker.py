"""The capture thread: jobs run on one named thread; results, errors and cancellation come back as they would."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from anyio.abc import TaskGroup

from bridge.capture.worker import CaptureThread


def _where(value: int) -> tuple[int, str]:
    return value, threading.current_thread().name


def _boom(_: Any) -> None:
    raise ValueError("boom")


async def test_a_job_runs_on_the_capture_thread_and_its_result_or_error_comes_back() -> None:
    worker = CaptureThread("test-capture")
    assert await worker.run(_where, 5) == (5, "test-capture")
    with pytest.raises(ValueError, match="boom"):
        await worker.run(_boom, None)
    assert await worker.run(_where, 6) == (6, "test-capture")  # the thread lives on after a failure


async def test_a_cancelled_caller_still_waits_for_the_job_it_started() -> None:
    """A transaction is never abandoned half-way: the caller returns only once its job is done."""
    worker = CaptureThread("test-capture")
    started, release, finished, job = _job_held_until_released(1)
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker.run, job, None)
        await _cancel_while_it_runs(tg, started, release)
    assert finished == [True]


async def test_a_cancelled_caller_gets_its_jobs_result_and_the_cancellation_at_its_next_checkpoint() -> None:
    """What a committed job returns still reaches the caller (e.g. to count the batch), as in a shielded wait."""
    worker = CaptureThread("test-capture")
    started, release, _, job = _job_held_until_released(7)
    got: list[object] = []

    async def caller() -> None:
        got.append(await worker.run(job, None))
        await anyio.sleep(0)  # the cancellation lands here
        got.append("not reached")

    async with anyio.create_task_group() as tg:
        tg.start_soon(caller)
        await _cancel_while_it_runs(tg, started, release)
    assert got == [7]


def _job_held_until_released(
    result: int,
) -> tuple[threading.Event, threading.Event, list[bool], Callable[[Any], int]]:
    """A job that runs until released: (started, release, finished, job)."""
    started, release, finished = threading.Event(), threading.Event(), []

    def job(_: Any) -> int:
        started.set()
        release.wait(5)
        finished.append(True)
        return result

    return started, release, finished, job


async def _cancel_while_it_runs(tg: TaskGroup, started: threading.Event, release: threading.Event) -> None:
    """Cancel the task group once the job runs; the job is released well after the cancel."""
    await anyio.to_thread.run_sync(started.wait, 5)
    threading.Timer(0.2, release.set).start()
    tg.cancel_scope.cancel()
