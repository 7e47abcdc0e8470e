"""The JSONL transport: lines split across reads, oversized frames skipped without buffering them."""

from __future__ import annotations

import anyio
import pytest

from bridge.sidecar.framing import JsonlTransport, Oversized


class ChunkStream:
    """A byte receive stream that yields the given chunks, then EOF."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = list(chunks)

    async def receive(self, max_bytes: int = 65536) -> bytes:
        if not self.chunks:
            raise anyio.EndOfStream
        return self.chunks.pop(0)

    async def aclose(self) -> None:
        pass


async def frames_of(chunks: list[bytes], limit: int = 64, read_chunk: int = 65536) -> list[object]:
    transport = JsonlTransport(ChunkStream(chunks), None, max_frame_bytes=limit, read_chunk=read_chunk)  # type: ignore[arg-type]
    out: list[object] = []
    while True:
        try:
            out.extend(await transport.receive_batch())
        except anyio.EndOfStream:
            return [f.size if isinstance(f, Oversized) else f for f in out]


async def test_lines_split_across_reads() -> None:
    assert await frames_of([b'{"a"', b":1}\n{", b'"b":2}\n\n  \n']) == [b'{"a":1}', b'{"b":2}']


async def test_several_lines_in_one_read_come_as_one_batch() -> None:
    transport = JsonlTransport(ChunkStream([b"1\n2\n3\n"]), None, max_frame_bytes=64)  # type: ignore[arg-type]
    assert await transport.receive_batch() == [b"1", b"2", b"3"]


async def test_last_line_without_newline_counts() -> None:
    assert await frames_of([b"1\n", b"2"]) == [b"1", b"2"]


@pytest.mark.parametrize(
    "chunks",
    [
        [b"x" * 100 + b"\nok\n"],  # within one read
        [b"x" * 40, b"x" * 40, b"x" * 20 + b"\nok\n"],  # across reads
        [b"x" * 30, b"x" * 70, b"x" * 1000, b"\nok\n"],  # long tail after the limit
    ],
)
async def test_oversized_frame_is_skipped_and_reported(chunks: list[bytes]) -> None:
    size = sum(len(c) for c in chunks) - len(b"\nok\n")
    assert await frames_of(chunks) == [size, b"ok"]


async def test_oversized_line_is_never_held_whole() -> None:
    chunks = [b"y" * 1000] * 50 + [b"\nfine\n"]
    transport = JsonlTransport(ChunkStream(chunks), None, max_frame_bytes=4096)  # type: ignore[arg-type]
    out: list[object] = []
    while True:
        try:
            out.extend(await transport.receive_batch())
        except anyio.EndOfStream:
            break
    assert [type(f) for f in out] == [Oversized, bytes]
    assert transport.peak_buffered <= 4096


async def test_frame_exactly_at_the_limit_passes() -> None:
    assert await frames_of([b"z" * 64 + b"\n", b"z" * 65 + b"\n"]) == [b"z" * 64, 65]


async def test_unterminated_oversized_tail_at_eof() -> None:
    assert await frames_of([b"ok\n", b"q" * 100]) == [b"ok", 100]
