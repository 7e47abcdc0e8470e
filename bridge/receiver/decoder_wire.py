"""What the bridge and its OTLP decoder process say to each other over the child's stdin and stdout.

Each message is a msgpack value (a tagged msgspec Struct) after its length as
four big-endian bytes. The bridge speaks first: :class:`Hello` (the secrets the
decoder must mask, never on its command line), answered by :class:`Ready`; then
one :class:`Job` at a time, answered by :class:`Ingested`, :class:`Refused` (the body is
refused: an HTTP status and the reason) or :class:`Failed` (an unexpected error, as
a redacted sentence). The decoder never writes anything else to its stdout. The rows
themselves never cross: the decoder stores them in the telemetry store.
"""

from __future__ import annotations

import msgspec

from bridge.receiver.records import OtelRecord

HEADER_BYTES = 4
MAX_FRAME = 1 << 30  # a frame's length beyond this means the stream is out of step


class Ingested(msgspec.Struct, array_like=True, tag="ingested"):
    """One request, decoded and stored: what the receiver answers with and hands the baseline."""

    count: int  # records decoded
    rejected: int  # elements OTLP calls invalid (the answer's partial success)
    problems: str
    stored: int = 0  # records newly stored (the rest of ``count`` were redeliveries, unless storing failed)
    baseline: list[OtelRecord] = []  # what the OTEL baseline needs of the newly stored records
    fault: tuple[str, str] | None = None  # (kind, detail): the storage refused them (disk full, I/O error…)
    error: str | None = None  # storing failed for another reason (a sentence, redacted)


class Hello(msgspec.Struct, array_like=True, tag="hello"):
    secrets: list[str]  # values to mask wherever they appear (bridge.redact.register_secret)
    store: str | None = None  # the telemetry store's path (opened on the first job that stores)


class Ready(msgspec.Struct, array_like=True, tag="ready"):
    pid: int


class Job(msgspec.Struct, array_like=True, tag="job"):
    signal: str  # decode.Signal value
    fmt: str  # decode.Format value
    body: bytes
    gzipped: bool
    limit: int  # maxBodyBytes, also for the inflated body
    received_at_ms: int
    storing: bool  # autoIngestEnabled: rows are made only when they will be stored


class Refused(msgspec.Struct, array_like=True, tag="refused"):
    status: int
    reason: str


class Failed(msgspec.Struct, array_like=True, tag="failed"):
    error: str


ToDecoder = Hello | Job
FromDecoder = Ready | Ingested | Refused | Failed

_encoder = msgspec.msgpack.Encoder()


def frame(message: msgspec.Struct) -> bytes:
    """``message`` with its length in front, ready to write."""
    payload = _encoder.encode(message)
    return len(payload).to_bytes(HEADER_BYTES, "big") + payload


def frame_length(header: bytes) -> int:
    """The payload length a header announces; ``ValueError`` when it cannot be one of ours."""
    length = int.from_bytes(header, "big")
    if length > MAX_FRAME:
        raise ValueError(f"a frame of {length} bytes is out of step with the decoder protocol")
    return length
