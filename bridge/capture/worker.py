"""The capture thread: it takes queued work itself, and tells the event loop only what the loop waits for.

A slow stream (one frame a read) paid for every frame a wake of the pipeline's task, a hand-off to the
thread and its answer back through the loop's self-pipe: three wake-ups and two turns of the loop
beyond the read itself, ~35 % of a core at 1,000 frames/s. Here the loop puts an entry on a
``SimpleQueue`` (no Python-level lock; the thread wakes if it sleeps) and goes back to its pipes; the
thread takes up to ``max_batch`` entries at a time, in order, and hands them to ``handle``. The loop
hears back only when it waits: :meth:`IntakeThread.settled` (everything put so far is handled) and
:meth:`IntakeThread.call` (a function run on the thread between two batches) are futures the thread
settles through ``call_soon_threadsafe``, and ``handle`` itself sends the loop only what the loop must
act on (:meth:`IntakeThread.to_loop`). Both wait for :meth:`IntakeThread.run` to have started the thread.

One thread also keeps the store's connection, caches and ledger warm on one core. The thread lives as
long as :meth:`IntakeThread.run`: cancelling that stops it after the batch it is in (a transaction is
never abandoned half-way) and waits for it; what was still queued is not handled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import anyio

from bridge.errors import SHUTTING_DOWN, BridgeError

T = TypeVar("T")
E = TypeVar("E")

log = logging.getLogger("bridge.capture")


class IntakeStopped(BridgeError):
    """The capture thread stopped (the bridge is shutting down) before it got to what was asked."""

    def __init__(self) -> None:
        super().__init__(SHUTTING_DOWN, "The bridge is shutting down: the capture stopped before it got to this.")


class _Call:
    """A function to run on the thread in queue order, and the future that gets its outcome.

    ``state`` (under the intake's lock): ``queued``, then ``begun`` on the thread, or ``abandoned``
    (its caller was cancelled, or the thread stopped, first): an abandoned call is never run.
    """

    __slots__ = ("done", "fn", "state")

    def __init__(self, fn: Callable[[], Any], done: asyncio.Future[Any]) -> None:
        self.fn = fn
        self.done = done
        self.state = "queued"


class _Stop:
    """One run's stop token: a token left in the queue by an earlier run stops nothing."""


class IntakeThread(Generic[E]):
    """Entries in (any thread, never blocking), batches handled in order on one thread of its own."""

    def __init__(self, handle: Callable[[list[E]], None], max_batch: int, name: str = "capture") -> None:
        self.name = name
        self.max_batch = max_batch
        self._handle = handle
        self._intake: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()  # the waiters, the counts they compare, the calls' states
        self._put = 0  # entries put (counted by the putting side)
        self._handled = 0  # entries handled (counted by the thread)
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._calls: set[_Call] = set()  # queued, not begun
        self._stopped = False  # a run's thread ended; waiting for it is pointless until the next run
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ the loop's side
    def put(self, entry: E) -> None:
        """Queue ``entry``; the thread hands it to ``handle`` after everything put before it."""
        with self._lock:
            self._put += 1
        self._intake.put(entry)

    @property
    def pending(self) -> int:
        """Entries put and not yet handled."""
        return self._put - self._handled

    async def settled(self) -> None:
        """Wait until every entry put so far has been handled (:class:`IntakeStopped` if the thread stops first)."""
        target = self._put
        if self._handled >= target:
            return
        done = asyncio.get_running_loop().create_future()
        with self._lock:
            if self._handled >= target:
                return
            if self._stopped:
                raise IntakeStopped
            self._waiters.append((target, done))
        try:
            await done
        finally:
            if not done.done():  # cancelled: the thread need not settle it
                with self._lock:
                    self._waiters = [w for w in self._waiters if w[1] is not done]

    async def call(self, fn: Callable[[], T]) -> T:
        """``fn()`` on the thread once the entries put before are handled; its result, or its exception here.

        A cancelled caller still waits for a call the thread has begun, so its outcome is never lost
        half-way (like ``to_thread.run_sync`` without ``abandon_on_cancel``); a call not begun yet is
        abandoned and never runs. :class:`IntakeStopped` when the thread stops before it begins.
        """
        call = _Call(fn, asyncio.get_running_loop().create_future())
        with self._lock:
            if self._stopped:
                raise IntakeStopped
            self._calls.add(call)
        self._intake.put(call)
        try:
            return await asyncio.shield(call.done)
        except asyncio.CancelledError:
            with self._lock:
                begun = call.state == "begun"
                if not begun:
                    call.state = "abandoned"
                    self._calls.discard(call)
            if not begun or call.done.cancelled():
                raise
            with anyio.CancelScope(shield=True):
                await asyncio.wait((call.done,))
            return call.done.result()  # type: ignore[no-any-return]

    def to_loop(self, fn: Callable[..., object], *args: Any) -> None:
        """From the thread: run ``fn(*args)`` on the event loop soon (e.g. an observer)."""
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody listens any more
                loop.call_soon_threadsafe(fn, *args)

    def wait_stopping(self, timeout: float) -> bool:
        """From the thread: sleep up to ``timeout`` (a retry's back-off); True when the thread is to stop."""
        return self._stopping.wait(timeout)

    async def run(self) -> None:
        """Start the thread and keep it until cancelled; then stop it after its current batch, and wait."""
        if self._thread is not None:
            raise RuntimeError(f"the {self.name} thread runs already")
        loop = self._loop = asyncio.get_running_loop()
        ended: asyncio.Future[None] = loop.create_future()
        token = _Stop()
        self._stopping.clear()
        with self._lock:
            self._stopped = False
        self._thread = threading.Thread(target=self._main, args=(loop, ended, token), name=self.name, daemon=True)
        self._thread.start()
        try:
            await anyio.sleep_forever()
        finally:
            self._stopping.set()
            self._intake.put(token)
            with anyio.CancelScope(shield=True):
                await asyncio.wait((ended,))
            self._thread = None

    # ------------------------------------------------------------ the thread's side
    def _main(self, loop: asyncio.AbstractEventLoop, ended: asyncio.Future[None], token: _Stop) -> None:
        try:
            self._take_until_stopped(token)
        except BaseException:
            log.exception("the %s thread ended on an unexpected error", self.name)
            raise
        finally:
            self._stop_waiting()
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, ended, (True, None))

    def _stop_waiting(self) -> None:
        """The thread ends: whoever waits for entries or calls it will not get to is told so now."""
        with self._lock:
            self._stopped = True
            waiters, self._waiters = self._waiters, []
            calls, self._calls = self._calls, set()
            for call in calls:
                call.state = "abandoned"
        for _, done in waiters:
            self._settle_on_loop(done, (False, IntakeStopped()))
        for call in calls:
            self._settle_on_loop(call.done, (False, IntakeStopped()))

    def _take_until_stopped(self, token: _Stop) -> None:
        get, get_nowait, limit = self._intake.get, self._intake.get_nowait, self.max_batch
        stopping = self._stopping
        while not stopping.is_set():
            batch: list[E] = []
            item = get()
            while True:
                kind = type(item)
                if kind is _Stop:
                    if item is token:
                        return
                elif kind is _Call:
                    if batch:
                        self._handle_batch(batch)
                        batch = []
                    if stopping.is_set():
                        return
                    self._run_call(item)
                else:
                    batch.append(item)
                    if len(batch) >= limit:
                        break
                try:
                    item = get_nowait()
                except queue.Empty:
                    break
            if batch:
                self._handle_batch(batch)

    def _handle_batch(self, batch: list[E]) -> None:
        try:
            self._handle(batch)
        except Exception:  # handle keeps its own failures; this is a bug, and the thread must live on
            log.exception("the %s thread's handler failed; %d entries are lost", self.name, len(batch))
        with self._lock:
            self._handled += len(batch)
            if not self._waiters:
                return
            handled = self._handled
            ready = [done for target, done in self._waiters if target <= handled]
            if ready:
                self._waiters = [w for w in self._waiters if w[0] > handled]
        for done in ready:
            self._settle_on_loop(done, (True, None))

    def _run_call(self, call: _Call) -> None:
        with self._lock:
            if call.state != "queued":  # abandoned: its caller was cancelled before it began
                return
            call.state = "begun"
            self._calls.discard(call)
        try:
            outcome: tuple[bool, Any] = (True, call.fn())
        except BaseException as exc:  # handed to the awaiting task, which raises it
            outcome = (False, exc)
        self._settle_on_loop(call.done, outcome)

    def _settle_on_loop(self, done: asyncio.Future[Any], outcome: tuple[bool, Any]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            done.get_loop().call_soon_threadsafe(_settle, done, outcome)


def _settle(done: asyncio.Future[Any], outcome: tuple[bool, Any]) -> None:
    """On the loop: hand an outcome to the task that waits for it."""
    if done.done():  # cancelled meanwhile
        return
    ok, value = outcome
    if ok:
        done.set_result(value)
    else:
        done.set_exception(value)
