"""The transcript line format (docs/protocol.md §8) and its redaction: pure, no I/O.

One JSON object a line::

    {"t": 1.234567, "ts": "2025-01-01T00:00:00.000Z", "channel": "host"|"sidecar",
     "dir": "in"|"out", "msg": <the frame, redacted>}

``dir`` is seen from the bridge (host→bridge and codex→bridge are "in").
Lines of the sidecar channel also carry ``conn`` (1 for the first connection
to codex, +1 for each restart), so a replay knows which process said what.
A *lifecycle line* has ``event`` instead of ``msg``: ``{"event": "exit",
"code": -9, "expected": false}`` records how a codex connection ended (a
replay needs it to reproduce a crash). A frame that is not JSON is kept as a
redacted string in ``msg`` with ``"invalid": true``.

Redaction happens here, once, for every writer: key-based (:func:`redact`)
and value-based (:func:`redact_text`). Frames in which nothing could need
masking (the common case) are embedded as they are, without a decode.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from bridge.clock import iso_seconds
from bridge.redact import needs_redaction, redact, redact_text

Channel = Literal["host", "sidecar"]
Direction = Literal["in", "out"]

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.decode


def safe_frame(raw: bytes) -> tuple[bytes, bool]:
    """The JSON to embed for one frame's bytes (redacted, one line) and whether it was valid JSON."""
    body = raw.strip()
    if not needs_redaction(body) and b"\n" not in body and b"\r" not in body:
        try:
            msgspec.json.decode(body)  # embedded bytes must be JSON, or the line is broken
        except msgspec.DecodeError:
            return _encode(redact_text(body.decode("utf-8", "replace"))), False
        return body, True
    try:
        value = _decode(body)
    except msgspec.DecodeError:
        return _encode(redact_text(body.decode("utf-8", "replace"))), False
    return _encode(redact(value)), True


def frame_line(t: float, wall: float, channel: Channel, direction: Direction, raw: bytes, conn: int | None) -> bytes:
    """One transcript line (with its newline) for a frame."""
    msg, valid = safe_frame(raw)
    head = b'{"t":%.6f,"ts":"%s","channel":"%s","dir":"%s",' % (
        t,
        iso_seconds(wall).encode(),
        channel.encode(),
        direction.encode(),
    )
    if conn is not None:
        head += b'"conn":%d,' % conn
    if not valid:
        head += b'"invalid":true,'
    return head + b'"msg":' + msg + b"}\n"


def exit_line(t: float, wall: float, conn: int, code: int | None, expected: bool) -> bytes:
    """A lifecycle line: codex connection ``conn`` ended."""
    return (
        _encode(
            {
                "t": round(t, 6),
                "ts": iso_seconds(wall),
                "channel": "sidecar",
                "dir": "in",
                "conn": conn,
                "event": "exit",
                "code": code,
                "expected": expected,
            }
        )
        + b"\n"
    )


@dataclass(frozen=True)
class Line:
    """One parsed transcript line."""

    t: float
    ts: str
    channel: Channel
    dir: Direction
    msg: Any = None
    conn: int = 1
    event: str | None = None
    code: int | None = None
    expected: bool = True
    invalid: bool = False

    @property
    def is_frame(self) -> bool:
        return self.event is None


class TranscriptError(ValueError):
    """The file is not a transcript; the message names the line."""


def parse_lines(lines: Iterable[bytes | str], name: str = "transcript") -> Iterator[Line]:
    """Parse transcript lines; a torn last line (a crash mid-write) is ignored.

    Only a *last* line after good ones can be torn: a file whose every line is
    bad, or which holds no line at all, is not a transcript.
    """
    pending: tuple[int, Exception] | None = None
    parsed = 0
    for number, text in enumerate(lines, 1):
        if pending is not None:
            raise TranscriptError(f"{name} line {pending[0]} is not a transcript line: {pending[1]}")
        if not text.strip():
            continue
        try:
            obj = _decode(text)
            if not isinstance(obj, dict):
                raise ValueError("not a JSON object")
            channel, direction = obj["channel"], obj["dir"]
            if channel not in ("host", "sidecar") or direction not in ("in", "out"):
                raise ValueError(f"channel {channel!r} / dir {direction!r}")
            line = Line(
                t=float(obj["t"]),
                ts=str(obj.get("ts", "")),
                channel=channel,
                dir=direction,
                msg=obj.get("msg"),
                conn=int(obj.get("conn", 1)),
                event=obj.get("event"),
                code=obj.get("code"),
                expected=bool(obj.get("expected", True)),
                invalid=bool(obj.get("invalid", False)),
            )
        except KeyError as exc:
            pending = (number, ValueError(f"it has no {exc.args[0]!r} field"))
            continue
        except (msgspec.DecodeError, TypeError, ValueError) as exc:
            pending = (number, exc)
            continue
        parsed += 1
        yield line
    if parsed == 0:
        if pending is not None:
            raise TranscriptError(f"{name} line {pending[0]} is not a transcript line: {pending[1]}")
        raise TranscriptError(
            f"{name} is not a transcript: it holds no lines (a transcript is one JSON object a line, "
            "as `serve --transcript` and `capture-bridge record` write it)"
        )


def messages(msg: Any) -> list[Any]:
    """The JSON-RPC messages of a frame (a batch is several)."""
    return list(msg) if isinstance(msg, list) else [msg]
