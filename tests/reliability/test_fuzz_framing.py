"""Fuzzing the pure incremental host decoder (bridge/framing.py) in-process, at high volume.

Properties: the events do not depend on how the bytes are split into reads;
well-formed streams decode to exactly the frames that were encoded (oversized
ones as ``FrameTooLarge`` of their size); arbitrary bytes never raise and never
make the decoder hold more than about one frame.
"""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from bridge.framing import MAX_HEADER_BYTES, Event, Frame, FrameDecoder, FrameTooLarge, encode
from tests.reliability.fuzz_support import budget

LIMIT = 256


def feed_split(data: bytes, cuts: list[int], limit: int = LIMIT) -> tuple[list[Event], FrameDecoder]:
    """Feed ``data`` in reads cut at ``cuts``, then finish; every read checks the buffer bound."""
    decoder = FrameDecoder(limit)
    events: list[Event] = []
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    for start, end in itertools.pairwise(points):
        chunk = data[start:end]
        events += decoder.feed(chunk)
        assert len(decoder._buf) <= limit + MAX_HEADER_BYTES + len(chunk) + 4, len(decoder._buf)
    events += decoder.finish()
    return events, decoder


cuts = st.lists(st.integers(min_value=0, max_value=1 << 16), max_size=20)
line = st.binary(max_size=2 * LIMIT).map(lambda b: b.replace(b"\n", b""))


@budget(1500, 50000)
@given(st.lists(line, max_size=12), cuts)
def test_jsonl_decodes_each_line_whatever_the_reads(lines: list[bytes], cut: list[int]) -> None:
    data = b"{}\n" + b"".join(x + b"\n" for x in lines)  # the first byte decides the framing: jsonl
    events, decoder = feed_split(data, cut)
    assert decoder.framing == "jsonl"
    expected: list[Event] = [Frame(b"{}")]
    for x in lines:
        if len(x) > LIMIT:
            expected.append(FrameTooLarge(len(x)))
        elif x.strip():
            expected.append(Frame(x.strip()))
    assert events == expected


@budget(1500, 50000)
@given(st.lists(st.binary(max_size=2 * LIMIT), max_size=10), cuts)
def test_content_length_decodes_each_body_whatever_the_reads(bodies: list[bytes], cut: list[int]) -> None:
    data = b"".join(encode(b, "content-length") for b in bodies)
    events, _ = feed_split(data, cut)
    expected = [Frame(b) if len(b) <= LIMIT else FrameTooLarge(len(b)) for b in bodies]
    assert events == expected


@budget(2000, 60000)
@given(st.binary(max_size=MAX_HEADER_BYTES // 2), cuts, st.sampled_from([b"", b"{", b"C", b"Content-Length: "]))
def test_arbitrary_bytes_never_raise_and_reads_do_not_matter(data: bytes, cut: list[int], prefix: bytes) -> None:
    whole, _ = feed_split(prefix + data, [])
    split, _ = feed_split(prefix + data, cut)
    assert split == whole
