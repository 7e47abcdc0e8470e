"""What the bridge and its OTLP decoder process say to each other over the child's stdin and stdout.

Each message is a msgpack value (a tagged msgspec Struct) after its length as
four big-endian bytes. The bridge speaks first: :class:`Hello` (the secrets the
decoder must mask, never on its command line), answered by :class:`Ready`; then
one :class:`Job` at a time, answered by :class:`Ingested`, :class:`Refused` (the body is
refused: an HTTP status and the reason) or :class:`Failed` (an unexpected error, as
a redacted sentence); now and then an :class:`Expire`, answered by :class:`Placed`.
The decoder never writes anything else to its stdout. The rows themselves never
cross: the decoder stores them in the telemetry store, and maps the new ones to the
OTEL baseline's capture events itself (:mod:`bridge.receiver.baseline`), so only
those events cross.

Where the system can pass descriptors (POSIX), the Hello also names two hand-off
channels and the decoder serves the receiver's connections itself: the bridge sends
:class:`Rules` and, per accepted connection, a :class:`Handed` with the connection's
descriptor; the decoder answers the requests and sends an :class:`Outcome` for each
(framed as on stdout). So a telemetry flood costs the bridge's event loop nothing
but the outcomes.
"""

from __future__ import annotations

import msgspec

from bridge.capture.events import CaptureEvent

HEADER_BYTES = 4
MAX_FRAME = 1 << 30  # a frame's length beyond this means the stream is out of step


class Ingested(msgspec.Struct, array_like=True, tag="ingested"):
    """One request, decoded and stored: what the receiver answers with and hands the baseline."""

    count: int  # records decoded
    rejected: int  # elements OTLP calls invalid (the answer's partial success)
    problems: str
    stored: int = 0  # records newly stored (the rest of ``count`` were redeliveries, unless storing failed)
    events: list[CaptureEvent] = []  # the OTEL baseline's events: newly stored records and those they resolved
    fault: tuple[str, str] | None = None  # (kind, detail): the storage refused them (disk full, I/O error…)
    error: str | None = None  # storing failed for another reason (a sentence, redacted)
    unplaced: str | None = None  # mapping the new records to events failed (a sentence; they stay stored)


class Hello(msgspec.Struct, array_like=True, tag="hello"):
    secrets: list[str]  # values to mask wherever they appear (bridge.redact.register_secret)
    store: str | None = None  # the telemetry store's path (opened on the first job that stores)
    # The decoder's ends of the hand-off channels (inherited descriptors): connections come in on the
    # first (a SOCK_SEQPACKET socket: Rules and Handed, each Handed with its connection's descriptor),
    # the outcomes of the requests it answered go out on the second (a stream socket, framed like stdout).
    channels: tuple[int, int] | None = None


class Ready(msgspec.Struct, array_like=True, tag="ready"):
    pid: int
    serves: bool = False  # it took the channels: the bridge may hand it connections


class Rules(msgspec.Struct, array_like=True, tag="rules"):
    """What the checks of a request need (:mod:`bridge.receiver.intake`); sent again whenever it changes."""

    key: str
    max_body_bytes: int
    max_requests_per_second: int
    storing: bool  # autoIngestEnabled
    secrets: list[str] = []  # registered since the Hello
    http_limits: list[int | float] = []  # bridge.receiver.http.Limits, field by field ([]: the defaults)


class Handed(msgspec.Struct, array_like=True, tag="handed"):
    """A connection the bridge accepted; its descriptor rides along with this message."""

    peer: str


class Outcome(msgspec.Struct, array_like=True, tag="served"):
    """What answering one request says for the bridge: its counters, the baseline, a storage fault."""

    status: int
    storing: bool = True
    ingested: Ingested | None = None
    decoder_refused: bool = False  # answered 503: the decoder could not take the job
    failure: str | None = None  # answered 500: an unexpected decoding error (a redacted sentence)


class Job(msgspec.Struct, array_like=True, tag="job"):
    signal: str  # decode.Signal value
    fmt: str  # decode.Format value
    body: bytes
    gzipped: bool
    limit: int  # maxBodyBytes, also for the inflated body
    received_at_ms: int
    storing: bool  # autoIngestEnabled: rows are made only when they will be stored


class Expire(msgspec.Struct, array_like=True, tag="expire"):
    """Place the records the baseline held past their time (every few seconds), or all of them (it stops)."""

    everything: bool = False


class Placed(msgspec.Struct, array_like=True, tag="placed"):
    """The answer to :class:`Expire`: the events of the records it let go."""

    events: list[CaptureEvent] = []
    unplaced: str | None = None  # as in Ingested


class Refused(msgspec.Struct, array_like=True, tag="refused"):
    status: int
    reason: str


class Failed(msgspec.Struct, array_like=True, tag="failed"):
    error: str


ToDecoder = Hello | Job | Expire
FromDecoder = Ready | Ingested | Refused | Failed | Placed
ToHandler = Rules | Handed

_encoder = msgspec.msgpack.Encoder()


def packet(message: msgspec.Struct) -> bytes:
    """``message`` alone, for a channel that keeps message boundaries (SOCK_SEQPACKET)."""
    return _encoder.encode(message)


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
