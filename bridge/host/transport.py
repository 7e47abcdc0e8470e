"""Stdio byte transport: a reader thread for fd 0 and a writer thread for the
protected stdout fd (written directly by the sender when the writer is idle).

Blocking reads in a plain daemon thread (``os.read``) exit cleanly at
shutdown, unlike executor-based readline. Chunks reach the event loop
through an anyio memory stream, handed over without waiting for the loop to
take them; a chunk's slot, freed when the loop takes it, is the back-pressure. The writer
thread drains what is queued into few ``os.write`` calls so bursts of
notifications cost one syscall; until the host's first frame reveals the
framing, outgoing messages are held in order.

Output is bounded: once more than ``MAX_PENDING_BYTES`` wait for a host that
does not read, the reader stops reading stdin (the OS pipe holds the host's
requests, and the host's writes block), and bursts of live events are no
longer queued (they stay in the notifier's held window, so the host sees a
``seq`` gap and catches up with ``get_live_events``). Answers are always
queued. A host that closes stdin while the reader is paused is still heard
(``POLLHUP``), so EOF stops the bridge even then.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import select
import threading
from collections.abc import Callable

import anyio
from anyio.abc import ObjectReceiveStream

from bridge.framing import Framing, encode
from bridge.host.early import EarlyInput
from bridge.platform.pipes import enlarge_pipe

log = logging.getLogger("bridge.transport")

READ_CHUNK = 1 << 16
MAX_PENDING_BYTES = 32 << 20  # bytes queued for the host before back-pressure starts
WRITE_BATCH_BYTES = 1 << 20  # at most this much is joined into one write
CHUNKS_AHEAD = 2  # chunks of stdin read ahead of the loop (each up to READ_CHUNK): the back-pressure


def start_reader(
    source: int | EarlyInput = 0,
    writer: OutputWriter | None = None,
    on_hangup: Callable[[], None] | None = None,
) -> ObjectReceiveStream[bytes]:
    """Start a daemon thread feeding the loop from ``source``; the stream ends at EOF.

    ``source`` is a file descriptor, or the :class:`EarlyInput` that has owned
    stdin since the process started (it stays the one reader). With ``writer``,
    taking input pauses while the writer is over its bound; ``on_hangup`` is
    called (from the thread) if the host closes its end meanwhile.
    """
    from asyncio import get_running_loop  # here, not at import: the serve path imports this module on every platform

    fd = source.fd if isinstance(source, EarlyInput) else source
    early = source if isinstance(source, EarlyInput) else None
    send, receive = anyio.create_memory_object_stream[bytes](CHUNKS_AHEAD)
    loop = get_running_loop()
    taken = _TakenChunks(receive, threading.Semaphore(CHUNKS_AHEAD))

    def read() -> bytes:
        nonlocal early
        if early is not None:  # what the early reader still holds comes first; then stdin is ours
            chunk = early.read()
            if chunk is not None:
                return chunk
            early = None
        return os.read(fd, READ_CHUNK)

    def put(data: bytes) -> None:  # on the loop: there is room, the slot says so
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):  # nobody reads any more
            send.send_nowait(data)

    def deliver(data: bytes) -> None:
        # Handed over without waiting for the loop to take it (a request used to cost a round trip: a
        # future, a wake-up of this thread and a turn at the GIL); the slots are the back-pressure.
        taken.slots.acquire()
        if taken.closed:
            raise EOFError  # the loop stopped taking chunks: this thread ends (pump)
        loop.call_soon_threadsafe(put, data)

    def pump() -> None:
        try:
            while True:
                if writer is not None:
                    writer.wait_for_room(fd, on_hangup)
                try:
                    data = read()
                except InterruptedError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    break
                deliver(data)
        except Exception:  # the loop is gone or the stream closed: nothing left to feed
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody reads any more
            loop.call_soon_threadsafe(send.close)  # after every chunk handed over (callbacks run in order)

    threading.Thread(target=pump, name="stdin-reader", daemon=True).start()
    return taken


class _TakenChunks(ObjectReceiveStream[bytes]):
    """The loop's end of the reader's stream: taking a chunk frees its slot for the reader thread."""

    def __init__(self, inner: ObjectReceiveStream[bytes], slots: threading.Semaphore) -> None:
        self._inner = inner
        self.slots = slots
        self.closed = False

    async def receive(self) -> bytes:
        chunk = await self._inner.receive()
        self.slots.release()
        return chunk

    async def aclose(self) -> None:
        self.closed = True
        self.slots.release(CHUNKS_AHEAD)  # a reader thread waiting for a slot wakes, sees it closed and ends
        await self._inner.aclose()


class OutputWriter:
    """Writes framed messages to ``fd`` from a dedicated thread, with a bound on what waits."""

    def __init__(self, fd: int, max_pending: int | None = None) -> None:
        self.fd = fd
        enlarge_pipe(fd)  # a burst of live events in one write, where the system allows it
        self.framing: Framing | None = None
        self.broken = False
        self.max_pending = MAX_PENDING_BYTES if max_pending is None else max_pending
        self.dropped_events = 0  # live events not queued because the host was not reading
        self._held: list[bytes] = []
        # Transcript taps (None: no transcript, no cost); they only queue, never write.
        self.tap: Callable[[bytes], None] | None = None
        self.tap_many: Callable[[list[bytes]], None] | None = None
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._unwritten = 0
        self._pending = 0  # bytes queued or held, not yet written
        self._paused = False  # the reader waits for room
        self._dropping = False  # live events are being dropped (logged once per episode)
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._idle = threading.Condition(self._lock)
        self._thread = threading.Thread(target=self._run, name="stdout-writer", daemon=True)
        self._thread.start()

    @property
    def pending_bytes(self) -> int:
        return self._pending

    def over_bound(self) -> bool:
        return self._pending >= self.max_pending

    def set_framing(self, framing: Framing) -> None:
        with self._lock:
            if self.framing is not None:
                return
            self.framing = framing
            # Nothing was written before the framing was known (the early reader, which writes blocking,
            # has handed over by now). From here on the fd is non-blocking: a sender that finds the writer
            # idle writes at once and never waits for a host slow to read (the rest goes to the writer).
            os.set_blocking(self.fd, False)
            held, self._held = self._held, []
            for body in held:
                self._unwritten += 1
                data = encode(body, framing)
                self._pending += len(data) - len(body)
                self._queue.put(data)

    def send(self, body: bytes) -> None:
        """Queue one encoded JSON message (framing is added here); never dropped."""
        if self.tap is not None:
            self.tap(body)
        with self._lock:
            if self.framing is None:
                self._held.append(body)
                self._pending += len(body)
                return
            data = encode(body, self.framing)
            if self._unwritten == 0:
                data = self._write_now(data)
                if not data:
                    return
            self._unwritten += 1
            self._pending += len(data)
        self._queue.put(data)

    def send_many(self, bodies: list[bytes]) -> None:
        """Queue a burst of live events as one write, unless the host is not reading.

        Past the bound the burst is not queued (it stays held for
        ``get_live_events``); the host sees the ``seq`` gap.
        """
        with self._lock:
            drop = self._pending >= self.max_pending
            if drop:
                self.dropped_events += len(bodies)
                first, self._dropping = not self._dropping, True
            else:
                self._dropping = False
                if self.framing is None:
                    self._held.extend(bodies)
                    self._pending += sum(len(body) for body in bodies)
                else:
                    framing = self.framing
                    if framing == "jsonl":  # one join (the trailing newline too), no copy of each body
                        data = b"\n".join([*bodies, b""])
                    else:
                        data = b"".join(encode(body, framing) for body in bodies)
                    if self._unwritten == 0:
                        data = self._write_now(data)
                    if data:
                        self._unwritten += 1
                        self._pending += len(data)
                        self._queue.put(data)
        if drop:
            if first:
                log.warning(
                    "the host is not reading: %d bytes wait for it; live events are not sent until it reads "
                    "(get_live_events still has them)",
                    self._pending,
                )
            return
        if self.tap_many is not None:
            self.tap_many(bodies)

    def wait_for_room(self, stdin_fd: int, on_hangup: Callable[[], None] | None) -> None:
        """Block (reader thread) while the bound is exceeded; report a hang-up of ``stdin_fd`` meanwhile."""
        with self._lock:
            if self._pending < self.max_pending or self.broken:
                return
            self._paused = True
        log.warning("the host is not reading its answers: reading stdin pauses until it does")
        poller = select.poll()
        poller.register(self._wake_r, select.POLLIN)
        # No POLLIN for stdin: only a hang-up wakes us, not the requests the pipe holds.
        poller.register(stdin_fd, getattr(select, "POLLRDHUP", 0))
        watching = True
        while True:
            for fd, mask in poller.poll():
                if fd == self._wake_r:
                    with contextlib.suppress(BlockingIOError):
                        os.read(self._wake_r, 64)
                elif watching and mask & (select.POLLHUP | select.POLLERR | getattr(select, "POLLRDHUP", 0)):
                    watching = False
                    poller.unregister(stdin_fd)
                    log.info("stdin closed while reading was paused")
                    if on_hangup is not None:
                        on_hangup()
            with self._lock:
                if not self._paused:
                    return

    def flush(self, timeout: float) -> bool:
        """Wait until everything queued is written; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._unwritten == 0 or self.broken, timeout)

    def close(self) -> None:
        self._queue.put(None)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            chunks = [item]
            size = len(item)
            stop = False
            while size < WRITE_BATCH_BYTES:  # join a burst, but never copy the whole backlog at once
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                chunks.append(more)
                size += len(more)
            self._write_all(chunks[0] if len(chunks) == 1 else b"".join(chunks))
            wake = False
            with self._idle:
                self._unwritten -= len(chunks)
                self._pending -= size
                if self._paused and (self._pending <= self.max_pending // 2 or self.broken):
                    self._paused = False
                    wake = True
                self._idle.notify_all()
            del chunks, item
            if wake:
                with contextlib.suppress(BlockingIOError):
                    os.write(self._wake_w, b"!")
            if stop:
                return

    def _write_now(self, data: bytes) -> bytes:
        """With the lock held and the writer idle: write what the pipe takes now; the rest is returned.

        Saves the hand-off to the writer thread (a wake-up and a turn at the GIL, a good part of an
        answer's latency while the stream is busy). Nothing can be queued meanwhile: queueing takes
        the lock, and the writer writes only what was queued.
        """
        if self.broken:
            return b""
        try:
            n = os.write(self.fd, data)
        except (BlockingIOError, InterruptedError):
            return data
        except OSError:
            self.broken = True  # the host is gone; nothing more can be said to it
            return b""
        return data[n:] if n < len(data) else b""

    def _write_all(self, data: bytes) -> None:
        if self.broken:
            return
        view = memoryview(data)
        poller: select.poll | None = None
        while view:
            try:
                n = os.write(self.fd, view)
            except InterruptedError:
                continue
            except BlockingIOError:  # the pipe is full: wait until the host reads (a hang-up ends the wait too)
                if poller is None:
                    poller = select.poll()
                    poller.register(self.fd, select.POLLOUT)
                poller.poll()
                continue
            except OSError:
                self.broken = True  # the host is gone; nothing more can be said to it
                return
            view = view[n:]


__all__ = ["OutputWriter", "start_reader"]
