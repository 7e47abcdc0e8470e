"""The stdin reader thread: chunks reach the loop in order, and it reads only a few chunks ahead of it."""

from __future__ import annotations

import os
import threading

import anyio

from bridge.host.transport import CHUNKS_AHEAD, READ_CHUNK, start_reader


async def test_a_host_writing_faster_than_the_loop_takes_waits_and_nothing_is_lost_or_reordered() -> None:
    read_fd, write_fd = os.pipe()
    stream = start_reader(read_fd)
    chunks = [bytes([65 + n % 26]) * READ_CHUNK for n in range(40)]
    written = 0

    def host() -> None:
        nonlocal written
        for chunk in chunks:
            os.write(write_fd, chunk)  # blocks while the pipe is full
            written += len(chunk)
        os.close(write_fd)

    threading.Thread(target=host, daemon=True).start()
    await anyio.sleep(0.3)  # the loop takes nothing meanwhile
    # the reader holds CHUNKS_AHEAD chunks handed over and one more read; the pipe holds at most one chunk
    ahead = (CHUNKS_AHEAD + 2) * READ_CHUNK
    assert written <= ahead < len(chunks) * READ_CHUNK
    with anyio.fail_after(30):
        received = b"".join([chunk async for chunk in stream])
    assert received == b"".join(chunks)
    await stream.aclose()
    os.close(read_fd)


async def test_when_the_loop_stops_taking_chunks_the_reader_thread_ends() -> None:
    read_fd, write_fd = os.pipe()
    before = set(threading.enumerate())
    stream = start_reader(read_fd)
    (reader,) = [t for t in threading.enumerate() if t not in before and t.name == "stdin-reader"]
    for _ in range(CHUNKS_AHEAD + 1):  # the slots fill, and the thread waits for one with a chunk in hand
        os.write(write_fd, b"x" * 100)
        await anyio.sleep(0.05)
    assert reader.is_alive()
    await stream.aclose()
    with anyio.fail_after(5):
        while reader.is_alive():
            await anyio.sleep(0.01)
    os.close(write_fd)
    os.close(read_fd)
