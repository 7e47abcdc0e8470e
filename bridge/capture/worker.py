"""The capture thread: one long-lived thread runs the capture transactions, fed by a queue.

``anyio.to_thread.run_sync`` per batch costs, at 10,000 frames/s, hundreds of
hand-offs a second through the worker pool (a capacity limiter, a cancel
scope, a ``Condition.notify`` to wake a pooled worker). Here the loop puts the
job on a ``SimpleQueue`` (no Python-level lock) and awaits a future the thread
settles through ``call_soon_threadsafe``; one thread also keeps the store's
connection, caches and ledger warm on one core. Like ``to_thread.run_sync``
without ``abandon_on_cancel``, the caller waits for a started job to finish
even when cancelled, so a transaction is never abandoned half-way. The thread is a daemon that
lives as long as the process (it blocks on the queue when there is nothing to do).
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import anyio

T = TypeVar("T")
_Job = tuple[Callable[[Any], Any], Any, "asyncio.Future[Any]", asyncio.AbstractEventLoop]


class CaptureThread:
    def __init__(self, name: str = "capture") -> None:
        self.name = name
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    async def run(self, fn: Callable[[Any], T], arg: Any) -> T:
        """``fn(arg)`` on the capture thread; its result, or its exception raised here."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Any] = loop.create_future()  # a bare future: an anyio Event costs ~8x as much
        self._ensure_started()
        self._jobs.put((fn, arg, done, loop))
        try:
            return await asyncio.shield(done)
        except asyncio.CancelledError:
            # Cancelled while the job runs (a shielded scope on every call cost the loop more than the
            # hand-off: a backend lookup and the current task each time): wait for the job, shielded, and
            # return its outcome; the scope's cancellation lands at the caller's next checkpoint.
            if done.cancelled():  # only a closing loop cancels it
                raise
            with anyio.CancelScope(shield=True):
                await asyncio.wait((done,))
            return done.result()  # type: ignore[no-any-return]

    def _ensure_started(self) -> None:
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
                    self._thread.start()

    def _loop(self) -> None:
        while True:
            fn, arg, done, loop = self._jobs.get()
            try:
                outcome: tuple[bool, Any] = (True, fn(arg))
            except BaseException as exc:  # handed to the awaiting task, which raises it
                outcome = (False, exc)
            try:
                loop.call_soon_threadsafe(_settle, done, outcome)
            except RuntimeError:  # the loop is closed: nobody waits any more
                return


def _settle(done: asyncio.Future[Any], outcome: tuple[bool, Any]) -> None:
    """On the loop: hand a job's outcome to the task that waits for it."""
    if done.done():  # only a closing loop cancels it
        return
    ok, value = outcome
    if ok:
        done.set_result(value)
    else:
        done.set_exception(value)
