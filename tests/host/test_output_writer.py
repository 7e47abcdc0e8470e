"""The stdout writer: a message that finds the writer idle is written by its sender, never blocking it.

Answers and live events skip the hop to the writer thread when nothing is queued
(that hop was a good part of an answer's latency while the stream was busy). A
host that is slow to read must still never block the sender, and the order of
everything sent must hold when part of it goes the direct way and part through
the writer thread.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

import pytest

from bridge.host.transport import OutputWriter


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    r, w = os.pipe()
    yield r, w
    for fd in (r, w):
        with contextlib.suppress(OSError):
            os.close(fd)


def read_exactly(fd: int, size: int) -> bytes:
    out = b""
    while len(out) < size:
        chunk = os.read(fd, size - len(out))
        assert chunk, "the writer closed early"
        out += chunk
    return out


def test_an_idle_writer_leaves_the_write_to_the_sender(pipe: tuple[int, int]) -> None:
    r, w = pipe
    writer = OutputWriter(w)
    writer.set_framing("jsonl")
    writer.send(b'{"id":1}')
    writer.send_many([b'{"seq":1}', b'{"seq":2}'])
    # Already in the pipe when send returns: nothing went through the writer thread's queue.
    os.set_blocking(r, False)
    assert os.read(r, 1 << 16) == b'{"id":1}\n{"seq":1}\n{"seq":2}\n'
    assert writer.flush(1.0)
    writer.close()


def test_a_full_pipe_never_blocks_the_sender_and_keeps_the_order(pipe: tuple[int, int]) -> None:
    r, w = pipe
    writer = OutputWriter(w)
    writer.set_framing("jsonl")
    big = [b'{"seq":%d,"pad":"%s"}' % (n, b"x" * 4000) for n in range(40)]  # ~160 KB: more than a pipe holds
    done = threading.Event()

    def sender() -> None:  # live events and answers interleaved, as the capture thread and the loop send them
        for n, body in enumerate(big):
            writer.send_many([body])
            writer.send(b'{"id":%d}' % n)
        done.set()

    thread = threading.Thread(target=sender)
    thread.start()
    assert done.wait(5.0), "a sender waited for a host that does not read"
    thread.join()
    expected = b"".join(body + b"\n" + b'{"id":%d}\n' % n for n, body in enumerate(big))
    assert read_exactly(r, len(expected)) == expected
    assert writer.flush(1.0)
    writer.close()


def test_a_host_that_went_away_breaks_the_writer_without_an_error(pipe: tuple[int, int]) -> None:
    r, w = pipe
    writer = OutputWriter(w)
    writer.set_framing("jsonl")
    os.close(r)
    writer.send(b'{"id":1}')
    assert writer.broken
    writer.send(b'{"id":2}')  # nothing more is written, nothing raises
    writer.close()
