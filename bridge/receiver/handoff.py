"""The bridge's end of the hand-off channels to its decoder process (:mod:`bridge.receiver.decoder`).

Two socket pairs made before each start: on a ``SOCK_SEQPACKET`` one the bridge sends
:class:`~bridge.receiver.decoder_wire.Rules` and, per accepted connection, a
:class:`~bridge.receiver.decoder_wire.Handed` carrying the connection's descriptor
(``SCM_RIGHTS``); on a stream one the decoder sends back one
:class:`~bridge.receiver.decoder_wire.Outcome` a request, framed as on its stdout. The
decoder's end is :mod:`bridge.receiver.handed`.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio
import msgspec
from anyio.abc import TaskGroup

from bridge.receiver.decoder_wire import HEADER_BYTES, Outcome, Rules, frame_length

log = logging.getLogger("bridge.receiver.decoder")

Pairs = tuple[tuple[socket.socket, socket.socket], tuple[socket.socket, socket.socket]]
_outcomes: msgspec.msgpack.Decoder[Outcome] = msgspec.msgpack.Decoder(Outcome)


@dataclass
class HandOff:
    """What handing connections to the decoder needs from the receiver."""

    tg: TaskGroup  # runs the reader of the outcomes
    rules: Callable[[], Rules]  # the checks' current rules (read before each hand-off)
    served: Callable[[Outcome], Awaitable[None]]  # one answered request's outcome, in the bridge


def channel_pairs() -> Pairs | None:
    """(handed, served) socket pairs, or None where descriptors cannot be passed."""
    if os.name != "posix" or not hasattr(socket, "send_fds") or not hasattr(socket, "SOCK_SEQPACKET"):
        return None
    try:
        handed = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    except OSError:
        return None
    try:
        served = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    except OSError:
        for sock in handed:
            sock.close()
        return None
    return handed, served


def close_pairs(pairs: Pairs | None, *, ours: bool) -> None:
    """Close the bridge's ends (``ours``) or the decoder's ends of both pairs."""
    if pairs is not None:
        for pair in pairs:
            pair[0 if ours else 1].close()


async def send_with_fds(sock: socket.socket, message: bytes, fds: list[int]) -> None:
    """One whole message on a SOCK_SEQPACKET socket, with ``fds``; waits while its buffer is full."""
    while True:
        try:
            socket.send_fds(sock, [message], fds)
            return
        except (BlockingIOError, InterruptedError):
            await anyio.wait_writable(sock)


async def read_outcomes(served: socket.socket, take: Callable[[Outcome], Awaitable[None]]) -> str:
    """Hand each outcome the decoder sends to ``take`` until the channel ends; returns why it ended."""
    buffer = bytearray()
    try:
        while True:
            await anyio.wait_readable(served)
            try:
                data = served.recv(1 << 20)
            except (BlockingIOError, InterruptedError):
                continue
            if not data:
                return "it stopped serving connections"
            buffer += data
            while len(buffer) >= HEADER_BYTES:
                length = frame_length(bytes(buffer[:HEADER_BYTES]))
                if len(buffer) < HEADER_BYTES + length:
                    break
                outcome = _outcomes.decode(bytes(buffer[HEADER_BYTES : HEADER_BYTES + length]))
                del buffer[: HEADER_BYTES + length]
                try:
                    await take(outcome)
                except Exception:
                    log.exception("taking an OTLP request's outcome failed")
    except (OSError, ValueError, msgspec.DecodeError, anyio.ClosedResourceError) as exc:
        return f"its outcomes stopped ({type(exc).__name__}: {exc})"
