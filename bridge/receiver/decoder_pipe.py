"""The bridge's end of one running decoder process: its pipes, the answers in flight, why it was lost.

:class:`~bridge.receiver.decoder.DecoderProcess` starts, uses and stops these; jobs go down the
child's stdin as :mod:`~bridge.receiver.decoder_wire` frames and their answers come back on its
stdout in the same order, each to the :class:`Waiter` that was first in line.
"""

from __future__ import annotations

import socket
from collections import deque

import anyio
import msgspec
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream

from bridge.receiver.decoder_wire import HEADER_BYTES, FromDecoder, Rules, frame, frame_length


class Waiter:
    """One sent message's answer, filled in by whichever caller reads it off the pipe."""

    __slots__ = ("answer", "done", "problem")

    def __init__(self) -> None:
        self.answer: FromDecoder | None = None
        self.problem: str | None = None
        self.done = False


class Running:
    def __init__(self, process: Process) -> None:
        assert process.stdin is not None and process.stdout is not None
        self.process = process
        self.stdin = process.stdin
        self.stdout = BufferedByteReceiveStream(process.stdout)
        self.secrets: frozenset[str] | None = None  # None until the first Hello is sent
        self.sending = anyio.Lock()
        self.reading = anyio.Lock()
        self.waiting: deque[Waiter] = deque()  # sent, not yet answered: answers come back in this order
        self.lost: str | None = None  # why it can take no more jobs
        self.channels: tuple[socket.socket, socket.socket] | None = None  # (handed, served) once it serves
        self.handing = anyio.Lock()
        self.rules_sent: Rules | None = None

    async def send(self, message: msgspec.Struct) -> None:
        await self.stdin.send(frame(message))

    async def receive(self) -> FromDecoder:
        header = await self.stdout.receive_exactly(HEADER_BYTES)
        payload = await self.stdout.receive_exactly(frame_length(header))
        answer: FromDecoder = _decoder.decode(payload)
        return answer


_decoder: msgspec.msgpack.Decoder[FromDecoder] = msgspec.msgpack.Decoder(FromDecoder)
# What ends a job without an answer: the process is gone or out of step.
LOST = (
    anyio.EndOfStream,
    anyio.IncompleteRead,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    msgspec.DecodeError,
    ValueError,
    OSError,
    TimeoutError,
)
