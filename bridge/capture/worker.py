"""The capture thread: one long-lived thread runs the capture transactions, fed by a queue.

``anyio.to_thread.run_sync`` per batch costs, at 10,000 frames/s, hundreds of
hand-offs a second through the worker pool (a capacity limiter, a cancel
scope, a ``Condition.notify`` to wake a pooled worker). Here the loop puts the
job on a ``SimpleQueue`` (no Python-level lock) and awaits an event the thread
sets through ``call_soon_threadsafe``; one thread also keeps the store's
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
_Job = tuple[Callable[[Any], Any], Any, list[tuple[bool, Any]], asyncio.AbstractEventLoop, anyio.Event]


class CaptureThread:
    def __init__(self, name: str = "capture") -> None:
        self.name = name
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    async def run(self, fn: Callable[[Any], T], arg: Any) -> T:
        """``fn(arg)`` on the capture thread; its result, or its exception raised here."""
        loop = asyncio.get_running_loop()
        done = anyio.Event()
        box: list[tuple[bool, Any]] = []
        self._ensure_started()
        self._jobs.put((fn, arg, box, loop, done))
        with anyio.CancelScope(shield=True):
            await done.wait()
        ok, value = box[0]
        if ok:
            return value  # type: ignore[no-any-return]
        raise value

    def _ensure_started(self) -> None:
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
                    self._thread.start()

    def _loop(self) -> None:
        while True:
            fn, arg, box, loop, done = self._jobs.get()
            try:
                box.append((True, fn(arg)))
            except BaseException as exc:  # handed to the awaiting task, which raises it
                box.append((False, exc))
            try:
                loop.call_soon_threadsafe(done.set)
            except RuntimeError:  # the loop is closed: nobody waits any more
                return
