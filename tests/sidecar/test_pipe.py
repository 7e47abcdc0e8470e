"""codex's stdout pipe: what is waiting comes in one read, the end is an end of stream, a close wakes a reader."""

from __future__ import annotations

import array
import asyncio
import fcntl
import os
import sys
import termios

import anyio
import pytest

from bridge.platform.pipes import PIPE_BYTES
from bridge.sidecar.pipe import PipeReader, stdout_pipe


async def test_what_codex_wrote_is_read_at_once_and_its_exit_ends_the_stream() -> None:
    read_fd, write_fd = stdout_pipe()
    reader = PipeReader(read_fd)
    os.write(write_fd, b'{"a":1}\n{"b":2}\n')
    os.write(write_fd, b'{"c":3}\n')
    assert await reader.receive(1 << 16) == b'{"a":1}\n{"b":2}\n{"c":3}\n'
    os.close(write_fd)
    with pytest.raises(anyio.EndOfStream):
        await reader.receive()
    await reader.aclose()
    with pytest.raises(anyio.ClosedResourceError):
        await reader.receive()


async def test_closing_wakes_a_reader_that_waits_for_codex() -> None:
    read_fd, write_fd = stdout_pipe()
    reader = PipeReader(read_fd)
    failures: list[BaseException] = []

    async def read() -> None:
        try:
            await reader.receive()
        except anyio.ClosedResourceError as exc:
            failures.append(exc)

    with anyio.fail_after(9):
        async with anyio.create_task_group() as tg:
            tg.start_soon(read)
            await anyio.wait_all_tasks_blocked()
            await reader.aclose()
    assert len(failures) == 1
    os.close(write_fd)


async def test_a_reader_with_data_waiting_still_lets_other_tasks_run() -> None:
    """Every receive goes through the event loop: a codex that never stops writing starves nothing."""
    read_fd, write_fd = stdout_pipe()
    reader = PipeReader(read_fd)
    ticks = 0

    async def other() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await anyio.sleep(0)

    async with anyio.create_task_group() as tg:
        tg.start_soon(other)
        for _ in range(20):
            os.write(write_fd, b"x\n")
            await reader.receive()
        tg.cancel_scope.cancel()
    assert ticks >= 10
    await reader.aclose()
    os.close(write_fd)


def waiting_bytes(fd: int) -> int:
    buf = array.array("i", [0])
    fcntl.ioctl(fd, termios.FIONREAD, buf)
    return buf[0]


async def test_what_codex_writes_while_nobody_reads_waits_in_the_pipe_for_the_next_receive() -> None:
    read_fd, write_fd = stdout_pipe()
    reader = PipeReader(read_fd)
    os.write(write_fd, b"first\n")
    assert await reader.receive() == b"first\n"
    os.write(write_fd, b"second\n")  # the client is busy elsewhere: the loop stops polling, the bytes stay
    await anyio.sleep(0.05)
    assert waiting_bytes(read_fd) == len(b"second\n")
    assert await reader.receive() == b"second\n"
    await reader.aclose()
    os.close(write_fd)


async def test_bytes_read_for_a_receive_cancelled_before_it_returned_are_not_lost() -> None:
    read_fd, write_fd = stdout_pipe()
    reader = PipeReader(read_fd)
    task = asyncio.ensure_future(reader.receive())
    await asyncio.sleep(0)  # the receive waits for codex
    os.write(write_fd, b"frame\n")
    with anyio.fail_after(9):
        while waiting_bytes(read_fd):  # the loop's callback reads them for the waiting receive...
            await asyncio.sleep(0)
    task.cancel()  # ...which is cancelled before it could return them
    with pytest.raises(asyncio.CancelledError):
        await task
    with anyio.fail_after(3):
        assert await reader.receive() == b"frame\n"
    await reader.aclose()
    os.close(write_fd)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pipe sizes are set on Linux only")
def test_the_pipe_holds_more_than_the_default_where_the_system_allows() -> None:
    read_fd, write_fd = stdout_pipe()
    try:
        size = fcntl.fcntl(read_fd, fcntl.F_GETPIPE_SZ)  # type: ignore[attr-defined,unused-ignore]
        with open("/proc/sys/fs/pipe-max-size") as f:
            limit = int(f.read())
        assert size == PIPE_BYTES if limit >= PIPE_BYTES else size >= 65536
    finally:
        os.close(read_fd)
        os.close(write_fd)
