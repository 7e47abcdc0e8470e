"""codex's stdout, read straight from its pipe.

The stream is the bridge's busiest input: at full speed codex writes a few
hundred kilobytes between two turns of the event loop. asyncio's subprocess
pipes read it into a buffer, then copy it out again for the reader, and pause
and resume the pipe (two ``epoll_ctl`` calls) whenever that buffer fills; that
plumbing cost about as much of the event loop as decoding the frames. Here
codex writes into a pipe the bridge made, enlarged where the system allows it
(fewer, larger reads), and :class:`PipeReader` reads what is waiting with one
``os.read`` from the event loop's reader callback.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import anyio
from anyio.abc import ByteReceiveStream
from anyio.lowlevel import checkpoint

from bridge.platform.pipes import enlarge_pipe

if TYPE_CHECKING:  # asyncio is imported when a pipe is read (POSIX): the module itself loads on every platform
    import asyncio


def stdout_pipe() -> tuple[int, int]:
    """A pipe for codex's stdout: (read end for the bridge, write end for the child)."""
    read_fd, write_fd = os.pipe()
    enlarge_pipe(read_fd)  # what codex may write ahead of the reader (Linux's default is 64 KiB)
    os.set_inheritable(read_fd, False)
    return read_fd, write_fd


class PipeReader(ByteReceiveStream):
    """The reading end of a pipe as an anyio byte stream, read in the event loop's own reader callback.

    ``anyio.wait_readable`` registers the descriptor with the selector and removes it again around
    every wait (two ``epoll_ctl`` calls, the selector's bookkeeping, a backend lookup, a future and a
    closure): at 1,000 frames/s every frame is a read of its own, and that was a quarter of the event
    loop's CPU (docs/performance.md, session 12). Here the descriptor stays registered while receives
    follow one another; the callback reads what is waiting and hands it to the waiting receive. A
    callback that finds nobody waiting (the client is busy, or waits for the capture to make room)
    unregisters, so a pipe codex keeps full is not polled in a loop; the next receive registers again.
    Each receive still waits for the loop's next poll, so a busy codex never starves other tasks.
    POSIX only, like the pipe (asyncio's selector loop: ``add_reader``).
    """

    def __init__(self, fd: int) -> None:
        os.set_blocking(fd, False)
        self._fd = fd
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiter: asyncio.Future[bytes] | None = None
        self._registered = False
        self._max = 65536
        self._carried = b""  # read for a receive that was cancelled meanwhile: the next one returns it

    async def receive(self, max_bytes: int = 65536) -> bytes:
        fd = self._fd
        if fd < 0:
            raise anyio.ClosedResourceError
        if self._waiter is not None:
            raise anyio.BusyResourceError("reading from")
        if self._carried:
            await checkpoint()  # first: a cancellation that lands here leaves them for the next receive
            data, self._carried = self._carried[:max_bytes], self._carried[max_bytes:]
            return data
        loop = self._loop
        if loop is None:
            from asyncio import get_running_loop

            loop = self._loop = get_running_loop()
        waiter: asyncio.Future[bytes] = loop.create_future()
        self._waiter = waiter
        self._max = max_bytes
        if not self._registered:
            loop.add_reader(fd, self._on_readable)
            self._registered = True
        try:
            data = await waiter
        except anyio.get_cancelled_exc_class():
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._carried = waiter.result()  # read, then cancelled before it was returned: not lost
            raise
        finally:
            self._waiter = None
        if not data:
            raise anyio.EndOfStream
        return data

    def _on_readable(self) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():  # nobody waits: stop polling until a receive asks again
            self._unregister()
            return
        try:
            data = os.read(self._fd, self._max)
        except (BlockingIOError, InterruptedError):
            return  # woken for nothing: wait on
        except OSError as exc:
            broken = anyio.BrokenResourceError(str(exc))
            broken.__cause__ = exc
            waiter.set_exception(broken)
            self._unregister()
            return
        waiter.set_result(data)

    def _unregister(self) -> None:
        if self._registered and self._loop is not None:
            self._registered = False
            self._loop.remove_reader(self._fd)

    async def aclose(self) -> None:
        fd = self._fd
        if fd < 0:
            return
        self._unregister()
        self._fd = -1
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(anyio.ClosedResourceError())  # a receive waiting for codex ends
        os.close(fd)
