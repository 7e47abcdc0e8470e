"""Host framing: newline-delimited JSON or LSP-style Content-Length headers.

Pure and incremental: :class:`FrameDecoder` is fed bytes as they arrive and
yields events. The framing is detected from the first non-blank byte
(``{``/``[`` → JSONL, ``C``/``c`` → Content-Length). A frame over the limit is
skipped as it streams past — never buffered whole — and reported as
:class:`FrameTooLarge`; malformed headers travel as :class:`FramingError`.
Neither stops the connection.
"""

from __future__ import annotations

from typing import Literal

import msgspec

Framing = Literal["jsonl", "content-length"]

MAX_HEADER_BYTES = 8192
_BLANK = b" \t\r\n"


class Frame(msgspec.Struct, frozen=True):
    body: bytes


class FrameTooLarge(msgspec.Struct, frozen=True):
    size: int


class FramingError(msgspec.Struct, frozen=True):
    reason: str


Event = Frame | FrameTooLarge | FramingError


def detect(first: int) -> Framing:
    """The framing a connection uses, from its first non-blank byte."""
    return "content-length" if first in (ord("C"), ord("c")) else "jsonl"


def encode(body: bytes, framing: Framing) -> bytes:
    if framing == "jsonl":
        return body + b"\n"
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


class FrameDecoder:
    """Incremental decoder; ``feed`` returns the events completed by ``data``."""

    def __init__(self, max_frame_bytes: int) -> None:
        self.max_frame_bytes = max_frame_bytes
        self.framing: Framing | None = None
        self._buf = bytearray()
        self._skipping = 0  # bytes of an oversized frame seen so far (jsonl)
        self._skip_remaining = 0  # bytes of an oversized body still to drop (content-length)
        self._skip_size = 0
        self._need: int | None = None  # body length we are waiting for (content-length)

    def feed(self, data: bytes) -> list[Event]:
        events: list[Event] = []
        if self.framing is None:
            stripped = data.lstrip(_BLANK)
            if not stripped:
                return events
            self.framing = detect(stripped[0])
            data = stripped
        if self.framing == "jsonl":
            self._feed_jsonl(data, events)
        else:
            self._feed_cl(data, events)
        return events

    def finish(self) -> list[Event]:
        """At EOF: a last unterminated JSONL line still counts as a frame."""
        events: list[Event] = []
        if self.framing == "jsonl":
            if self._skipping:
                events.append(FrameTooLarge(self._skipping))
            elif self._buf.strip():
                events.append(Frame(bytes(self._buf).strip()))
        elif self._buf.strip() or self._need is not None:
            events.append(FramingError("the connection closed in the middle of a frame"))
        self._buf.clear()
        return events

    # -- newline-delimited JSON ------------------------------------------------------------
    def _feed_jsonl(self, data: bytes, events: list[Event]) -> None:
        limit = self.max_frame_bytes
        start = 0
        while True:
            nl = data.find(b"\n", start)
            if nl < 0:
                tail = data[start:]
                if self._skipping:
                    self._skipping += len(tail)
                elif len(self._buf) + len(tail) > limit:
                    self._skipping = len(self._buf) + len(tail)
                    self._buf.clear()
                else:
                    self._buf += tail
                return
            chunk = data[start:nl]
            start = nl + 1
            if self._skipping:
                events.append(FrameTooLarge(self._skipping + len(chunk)))
                self._skipping = 0
                continue
            if self._buf:
                self._buf += chunk
                line = bytes(self._buf)
                self._buf.clear()
            else:
                line = chunk
            if len(line) > limit:
                events.append(FrameTooLarge(len(line)))
                continue
            line = line.strip()
            if line:
                events.append(Frame(line))

    # -- Content-Length ----------------------------------------------------------------------
    def _feed_cl(self, data: bytes, events: list[Event]) -> None:
        while data:
            if self._skip_remaining:
                n = min(self._skip_remaining, len(data))
                self._skip_remaining -= n
                data = data[n:]
                if not self._skip_remaining:
                    events.append(FrameTooLarge(self._skip_size))
                continue
            self._buf += data
            data = b""
            while True:
                if self._need is None:
                    if not self._parse_headers(events):
                        break
                    if self._skip_remaining:
                        # the rest of the buffer belongs to the oversized body
                        rest = bytes(self._buf)
                        self._buf.clear()
                        data = rest
                        break
                    continue
                if len(self._buf) < self._need:
                    break
                body = bytes(self._buf[: self._need])
                del self._buf[: self._need]
                self._need = None
                events.append(Frame(body))

    def _parse_headers(self, events: list[Event]) -> bool:
        # Drop blank separators between messages.
        while self._buf and self._buf[0] in _BLANK:
            del self._buf[:1]
        # The header block ends at whichever separator comes first: a block ended by a bare blank
        # line must not run on to the next frame's CRLF separator.
        crlf, lf = self._buf.find(b"\r\n\r\n"), self._buf.find(b"\n\n")
        end, sep = (crlf, 4) if crlf >= 0 and (lf < 0 or crlf < lf) else (lf, 2)
        if end < 0:
            if len(self._buf) > MAX_HEADER_BYTES:
                events.append(FramingError(f"header block longer than {MAX_HEADER_BYTES} bytes"))
                self._resync()
            return False
        header = bytes(self._buf[:end])
        del self._buf[: end + sep]
        length: int | None = None
        for raw in header.split(b"\n"):
            name, _, value = raw.strip().partition(b":")
            if name.strip().lower() == b"content-length":
                try:
                    length = int(value.strip())
                except ValueError:
                    length = None
                if length is None or length < 0:
                    events.append(FramingError(f"invalid Content-Length value {value.strip()[:40]!r}"))
                    return True
        if length is None:
            events.append(FramingError("header block without a Content-Length header"))
            return True
        if length > self.max_frame_bytes:
            have = min(len(self._buf), length)
            del self._buf[:have]
            self._skip_remaining = length - have
            self._skip_size = length
            if not self._skip_remaining:
                events.append(FrameTooLarge(length))
            return True
        self._need = length
        return True

    def _resync(self) -> None:
        """After garbage, drop input up to the next line that looks like a header."""
        idx = self._buf.lower().find(b"content-length:", 1)
        if idx < 0:
            self._buf.clear()
        else:
            del self._buf[:idx]
