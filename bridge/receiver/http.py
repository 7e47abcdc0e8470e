"""A small HTTP/1.1 server on anyio, built on the sans-IO ``h11`` parser.

Just what an OTLP/HTTP receiver needs and nothing more: keep-alive,
``Expect: 100-continue``, a body read that stops at a byte limit instead of
buffering whatever a client sends, and bounds against slow clients: a total
deadline for a request's headers and another for its body (a client that
trickles a byte at a time does not extend them), and a connection cap under
which a new connection evicts the oldest one that is not being answered, so
slow or idle connections can never lock a real sender out. h11 does the protocol parsing (request line,
headers, chunked and Content-Length framing); this module only moves bytes
and enforces the bounds, so it never stalls the event loop it shares with
the bridge.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio
import msgspec
from anyio.abc import ByteStream

if TYPE_CHECKING:
    from bridge.receiver.http_connection import Body as Body  # re-exported for annotations

log = logging.getLogger(__name__)


class Limits(msgspec.Struct, frozen=True):
    """Bounds of one server; the defaults suit loopback telemetry senders."""

    max_connections: int = 512  # past it, the oldest connection not being answered is closed
    header_bytes: int = 16 * 1024
    idle_timeout: float = 65.0  # between requests on a kept-alive connection
    header_timeout: float = 10.0  # total, from a request's first byte (or the accept) to its last header byte
    body_timeout: float = 30.0  # total, for the whole body of one request
    read_timeout: float = 15.0  # between two chunks of one request
    send_timeout: float = 15.0
    drain_bytes: int = 64 * 1024 * 1024  # discarded after an early answer, so the client sees it
    drain_timeout: float = 5.0


class BodyTooLarge(Exception):
    """The body passed the limit given to :meth:`Body.read`."""

    def __init__(self, limit: int, declared: int | None) -> None:
        super().__init__(limit)
        self.limit = limit
        self.declared = declared


class ClientGone(Exception):
    """The client closed, stalled past a timeout or broke the protocol mid-request."""


class DeadlinePassed(ClientGone):
    """A request's headers or body took longer than its total deadline."""


class Request(msgspec.Struct):
    method: str
    path: str  # the target without its query string
    headers: dict[str, bytes]  # lower-case names; repeated headers joined with ", "
    peer: str = ""

    def header(self, name: str) -> str | None:
        value = self.headers.get(name)
        return value.decode("latin-1") if value is not None else None


class Response(msgspec.Struct):
    status: int
    body: bytes = b""
    headers: list[tuple[bytes, bytes]] = msgspec.field(default_factory=list)


Handler = Callable[[Request, "Body"], Awaitable[Response]]


@dataclass(eq=False)
class _Slot:
    scope: anyio.CancelScope
    busy: bool = False  # a request on it is being answered
    evicted: bool = False


class Server:
    """Accepts connections from ``listener`` and serves each with ``handler``, within ``limits``.

    At the cap a new connection is not refused while some connection is only
    waiting (idle, or still sending a request head): the oldest such one is
    closed instead. Only when every connection is busy answering is the new one refused.
    """

    def __init__(self, handler: Handler, limits: Limits) -> None:
        self.handler = handler
        self.limits = limits
        self._open: dict[int, _Slot] = {}  # insertion order: oldest first
        self.refused_connections = 0
        self.evicted_connections = 0

    def _make_room(self) -> bool:
        live = [slot for slot in self._open.values() if not slot.evicted]
        if len(live) < self.limits.max_connections:
            return True
        victim = next((slot for slot in live if not slot.busy), None)
        if victim is None:
            return False
        victim.evicted = True
        victim.scope.cancel()
        self.evicted_connections += 1
        return True

    async def serve_stream(self, stream: ByteStream, peer: str | None = None) -> None:
        """Serve one accepted connection until it ends (within the connection cap)."""
        peer = _peer_name(stream) if peer is None else peer
        if not self._make_room():
            self.refused_connections += 1
            with anyio.CancelScope(shield=True):
                await stream.aclose()
            return
        slot = _Slot(anyio.CancelScope())
        self._open[id(slot)] = slot

        def busy(value: bool) -> None:
            slot.busy = value

        from bridge.receiver.http_connection import serve_connection  # h11 loads with the first connection

        try:
            with slot.scope:
                await serve_connection(stream, self.handler, self.limits, peer, busy)
        except Exception:  # one broken connection must never stop the listener
            log.exception("otlp connection from %s failed", peer)
        finally:
            del self._open[id(slot)]
            if slot.evicted:
                with anyio.CancelScope(shield=True):
                    await stream.aclose()

    @property
    def open_connections(self) -> int:
        return len(self._open)

    async def serve(self, listener: anyio.abc.Listener[ByteStream]) -> None:
        """Run until cancelled; connection tasks live in the listener's own task group."""
        await listener.serve(self.serve_stream)


def _peer_name(stream: ByteStream) -> str:
    from anyio.abc import SocketAttribute

    try:
        address = stream.extra(SocketAttribute.remote_address)
    except Exception:
        return ""
    return peer_text(address)


def peer_text(address: object) -> str:
    """``host:port`` of a socket address (a path or anything else as it is)."""
    if isinstance(address, tuple):
        return f"{address[0]}:{address[1]}"
    return str(address)
