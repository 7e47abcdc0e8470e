"""The host frame decoder, in-process: both framings, any chunking, oversize, garbage."""

from __future__ import annotations

import pytest

from bridge.framing import Frame, FrameDecoder, FrameTooLarge, FramingError, detect, encode

MESSAGES = [b'{"id":1,"method":"a"}', b'[{"id":2,"method":"b"}]', b'{"id":3,"method":"c","params":{"x":"\\n"}}']


def feed_in_pieces(decoder: FrameDecoder, data: bytes, size: int) -> list[object]:
    events: list[object] = []
    for i in range(0, len(data), size):
        events += decoder.feed(data[i : i + size])
    return events + decoder.finish()


@pytest.mark.parametrize("framing", ["jsonl", "content-length"])
@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 100_000])
def test_any_chunking_yields_the_same_frames(framing: str, size: int) -> None:
    stream = b"\n \r\n" + b"".join(encode(m, framing) for m in MESSAGES)  # type: ignore[arg-type]
    decoder = FrameDecoder(1 << 20)
    events = feed_in_pieces(decoder, stream, size)
    assert events == [Frame(m) for m in MESSAGES]
    assert decoder.framing == framing


def test_detection_by_first_non_blank_byte() -> None:
    assert detect(ord("{")) == "jsonl"
    assert detect(ord("[")) == "jsonl"
    assert detect(ord("C")) == "content-length"


@pytest.mark.parametrize("size", [1, 5, 1000])
def test_oversized_jsonl_line_is_reported_and_skipped(size: int) -> None:
    big = b'{"x":"' + b"a" * 500 + b'"}'
    stream = encode(MESSAGES[0], "jsonl") + big + b"\n" + encode(MESSAGES[1], "jsonl")
    decoder = FrameDecoder(100)
    events = feed_in_pieces(decoder, stream, size)
    assert events == [Frame(MESSAGES[0]), FrameTooLarge(len(big)), Frame(MESSAGES[1])]


def test_oversized_line_is_never_buffered() -> None:
    decoder = FrameDecoder(1000)
    decoder.feed(b'{"x":"')
    for _ in range(100):
        decoder.feed(b"a" * 10_000)
        assert len(decoder._buf) <= 1000
    assert decoder.feed(b'"}\n{}\n') == [FrameTooLarge(6 + 1_000_000 + 2), Frame(b"{}")]


@pytest.mark.parametrize("size", [1, 9, 4096])
def test_oversized_content_length_body_is_skipped(size: int) -> None:
    body = b"z" * 5000
    stream = (
        encode(MESSAGES[0], "content-length") + encode(body, "content-length") + encode(MESSAGES[2], "content-length")
    )
    decoder = FrameDecoder(1000)
    events = feed_in_pieces(decoder, stream, size)
    assert events == [Frame(MESSAGES[0]), FrameTooLarge(5000), Frame(MESSAGES[2])]


def test_content_length_header_without_length_is_an_error_value() -> None:
    decoder = FrameDecoder(1000)
    events = decoder.feed(b"Content-Type: x\r\n\r\n") + decoder.feed(encode(MESSAGES[0], "content-length"))
    assert isinstance(events[0], FramingError)
    assert "Content-Length" in events[0].reason
    assert events[1:] == [Frame(MESSAGES[0])]


def test_bad_content_length_value() -> None:
    decoder = FrameDecoder(1000)
    events = decoder.feed(b"Content-Length: abc\r\n\r\n")
    assert isinstance(events[0], FramingError)


def test_unterminated_last_jsonl_line_counts_at_eof() -> None:
    decoder = FrameDecoder(1000)
    assert decoder.feed(b'{"a":1}') == []
    assert decoder.finish() == [Frame(b'{"a":1}')]


def test_a_header_block_ended_by_a_bare_blank_line_does_not_swallow_the_next_frame() -> None:
    """Found by the fuzzer: the first separator ends the block, whichever kind it is."""
    decoder = FrameDecoder(1000)
    data = b'content-length:\t12\n\n{"id": null}' + encode(MESSAGES[0], "content-length")
    assert feed_in_pieces(decoder, data, 100_000) == [Frame(b'{"id": null}'), Frame(MESSAGES[0])]
