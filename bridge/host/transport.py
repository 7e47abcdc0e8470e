"""Stdio byte transport: a reader thread for fd 0 and a writer thread for the
protected stdout fd.

Blocking reads in a plain daemon thread (``os.read``) exit cleanly at
shutdown, unlike executor-based readline (see ARCHITECTURE-SKETCH traps).
Chunks reach the event loop through an anyio memory stream, which also gives
back-pressure. The writer thread drains everything queued into one
``os.write`` so bursts of notifications cost one syscall; until the host's
first frame reveals the framing, outgoing messages are held in order.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable

import anyio
from anyio.abc import ObjectReceiveStream
from anyio.lowlevel import EventLoopToken, current_token

from bridge.framing import Framing, encode

READ_CHUNK = 1 << 16


def start_reader(fd: int = 0) -> ObjectReceiveStream[bytes]:
    """Start a daemon thread reading ``fd``; the stream ends at EOF."""
    send, receive = anyio.create_memory_object_stream[bytes](16)
    token = current_token()

    def pump() -> None:
        try:
            while True:
                try:
                    data = os.read(fd, READ_CHUNK)
                except InterruptedError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    break
                anyio.from_thread.run(send.send, data, token=token)
        except Exception:  # the loop is gone or the stream closed: nothing left to feed
            return
        try:
            anyio.from_thread.run_sync(send.close, token=token)
        except Exception:
            return

    threading.Thread(target=pump, name="stdin-reader", daemon=True).start()
    return receive


class OutputWriter:
    """Writes framed messages to ``fd`` from a dedicated thread."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.framing: Framing | None = None
        self.broken = False
        self._held: list[bytes] = []
        # Transcript taps (None: no transcript, no cost); they only queue, never write.
        self.tap: Callable[[bytes], None] | None = None
        self.tap_many: Callable[[list[bytes]], None] | None = None
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._unwritten = 0
        self._idle = threading.Condition(self._lock)
        self._thread = threading.Thread(target=self._run, name="stdout-writer", daemon=True)
        self._thread.start()

    def set_framing(self, framing: Framing) -> None:
        with self._lock:
            if self.framing is not None:
                return
            self.framing = framing
            held, self._held = self._held, []
            for body in held:
                self._unwritten += 1
                self._queue.put(encode(body, framing))

    def send(self, body: bytes) -> None:
        """Queue one encoded JSON message (framing is added here)."""
        if self.tap is not None:
            self.tap(body)
        with self._lock:
            if self.framing is None:
                self._held.append(body)
                return
            self._unwritten += 1
        self._queue.put(encode(body, self.framing))

    def send_many(self, bodies: list[bytes]) -> None:
        """Queue several encoded messages as one write."""
        if self.tap_many is not None:
            self.tap_many(bodies)
        with self._lock:
            if self.framing is None:
                self._held.extend(bodies)
                return
            framing = self.framing
            self._unwritten += 1
        self._queue.put(b"".join(encode(body, framing) for body in bodies))

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
            stop = False
            while True:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                chunks.append(more)
            self._write_all(b"".join(chunks))
            with self._idle:
                self._unwritten -= len(chunks)
                self._idle.notify_all()
            if stop:
                return

    def _write_all(self, data: bytes) -> None:
        if self.broken:
            return
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.fd, view)
            except InterruptedError:
                continue
            except OSError:
                self.broken = True  # the host is gone; nothing more can be said to it
                return
            view = view[n:]


__all__ = ["EventLoopToken", "OutputWriter", "start_reader"]
