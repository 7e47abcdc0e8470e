"""codex's stdout, read straight from its pipe.

The stream is the bridge's busiest input: at full speed codex writes a few
hundred kilobytes between two turns of the event loop. asyncio's subprocess
pipes read it into a buffer, then copy it out again for the reader, and pause
and resume the pipe (two ``epoll_ctl`` calls) whenever that buffer fills; that
plumbing cost about as much of the event loop as decoding the frames. Here
codex writes into a pipe the bridge made, enlarged where the system allows it
(fewer, larger reads), and :class:`PipeReader` reads what is waiting with one
``os.read`` once anyio says the pipe is readable.
"""

from __future__ import annotations

import os

import anyio
from anyio.abc import ByteReceiveStream

from bridge.platform.pipes import enlarge_pipe


def stdout_pipe() -> tuple[int, int]:
    """A pipe for codex's stdout: (read end for the bridge, write end for the child)."""
    read_fd, write_fd = os.pipe()
    enlarge_pipe(read_fd)  # what codex may write ahead of the reader (Linux's default is 64 KiB)
    os.set_inheritable(read_fd, False)
    return read_fd, write_fd


class PipeReader(ByteReceiveStream):
    """The reading end of a pipe as an anyio byte stream (non-blocking ``os.read`` after ``wait_readable``)."""

    def __init__(self, fd: int) -> None:
        os.set_blocking(fd, False)
        self._fd = fd

    async def receive(self, max_bytes: int = 65536) -> bytes:
        while True:
            fd = self._fd
            if fd < 0:
                raise anyio.ClosedResourceError
            await anyio.wait_readable(fd)  # always through the loop: a busy codex never starves other tasks
            if self._fd < 0:
                raise anyio.ClosedResourceError
            try:
                data = os.read(fd, max_bytes)
            except BlockingIOError:
                continue
            except OSError as exc:
                raise anyio.BrokenResourceError from exc
            if not data:
                raise anyio.EndOfStream
            return data

    async def aclose(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            anyio.notify_closing(fd)  # a task waiting in receive() gets ClosedResourceError
            os.close(fd)
