"""Frame transports for the codex JSON-RPC client.

The client only needs "give me the frames that are waiting" and "send this
frame", so a spawned process (JSONL over pipes) and a later attach mode
(WebSocket, one message per text frame) can share it. :class:`JsonlTransport`
splits a byte stream into lines without ever holding more than the frame
limit of one unfinished line: an oversized line is skipped as it streams by
and reported as an :class:`Oversized` marker in its place.
"""

from __future__ import annotations

import contextlib
from typing import Protocol

import anyio
from anyio.abc import ByteReceiveStream, ByteSendStream

READ_CHUNK = 256 * 1024


class Oversized:
    """Stands in the batch for a frame that exceeded the limit and was discarded."""

    __slots__ = ("size",)

    def __init__(self, size: int) -> None:
        self.size = size

    def __repr__(self) -> str:
        return f"Oversized({self.size})"


Frame = bytes | Oversized


class FrameTransport(Protocol):
    """What :class:`bridge.sidecar.rpc.RpcClient` needs from a connection."""

    async def receive_batch(self) -> list[Frame]:
        """The frames that arrived (at least one); raises ``anyio.EndOfStream`` when closed."""
        ...

    async def send(self, frame: bytes) -> None:
        """Send one frame (no trailing newline)."""
        ...

    async def aclose(self) -> None:
        """Close the sending side (for a process: its stdin, which asks it to exit)."""
        ...


class JsonlTransport:
    """Newline-delimited frames over a pair of anyio byte streams."""

    def __init__(
        self,
        receive: ByteReceiveStream,
        send: ByteSendStream | None,
        *,
        max_frame_bytes: int,
        read_chunk: int = READ_CHUNK,
    ) -> None:
        self._receive = receive
        self._send = send
        self._max = max_frame_bytes
        self._chunk = read_chunk
        self._partial = bytearray()
        self._discarding = False
        self._discarded = 0
        self._eof = False
        self.peak_buffered = 0  # the most bytes of an unfinished line ever held

    async def receive_batch(self) -> list[Frame]:
        while True:
            if self._eof:
                raise anyio.EndOfStream
            try:
                chunk = await self._receive.receive(self._chunk)
            except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
                self._eof = True
                tail = self._finish()
                if tail:
                    return tail
                raise anyio.EndOfStream from None
            batch = self._split(chunk)
            if batch:
                return batch

    def _finish(self) -> list[Frame]:
        """A last line without a newline still counts as a frame."""
        if self._discarding:
            self._discarding = False
            return [Oversized(self._discarded)]
        if self._partial.strip():
            line = bytes(self._partial)
            self._partial.clear()
            return [line]
        return []

    def _split(self, chunk: bytes) -> list[Frame]:
        out: list[Frame] = []
        start = 0
        if self._discarding:
            idx = chunk.find(b"\n")
            if idx < 0:
                self._discarded += len(chunk)
                return out
            out.append(Oversized(self._discarded + idx))
            self._discarding = False
            self._discarded = 0
            start = idx + 1
        last_nl = chunk.rfind(b"\n")
        if last_nl < start:
            self._hold(chunk[start:] if start else chunk)
            return out
        lines = chunk[start:last_nl].split(b"\n")
        if self._partial:
            lines[0] = bytes(self._partial) + lines[0]
            self._partial.clear()
        limit = self._max
        for line in lines:
            if len(line) > limit:
                out.append(Oversized(len(line)))
            elif line and not line.isspace():
                out.append(line)
        if last_nl + 1 < len(chunk):
            self._hold(chunk[last_nl + 1 :])
        return out

    def _hold(self, piece: bytes) -> None:
        if len(self._partial) + len(piece) > self._max:
            self._discarding = True
            self._discarded = len(self._partial) + len(piece)
            self._partial.clear()
            return
        self._partial += piece
        if len(self._partial) > self.peak_buffered:
            self.peak_buffered = len(self._partial)

    async def send(self, frame: bytes) -> None:
        if self._send is None:
            raise anyio.ClosedResourceError
        await self._send.send(frame + b"\n")

    async def aclose(self) -> None:
        if self._send is not None:
            send, self._send = self._send, None
            with anyio.CancelScope(shield=True):
                with contextlib.suppress(OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
                    await send.aclose()
