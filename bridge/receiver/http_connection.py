"""One HTTP/1.1 connection of the receiver's server (:mod:`bridge.receiver.http`), on ``h11``.

Apart from the server so that ``h11`` is imported with the first connection, not while the
bridge starts (the first status waits for everything the start imports).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

import anyio
import h11
from anyio.abc import ByteStream

from bridge.receiver.http import BodyTooLarge, ClientGone, DeadlinePassed, Handler, Limits, Request, Response

log = logging.getLogger("bridge.receiver.http")

RECEIVE_CHUNK = 64 * 1024


class Body:
    """The body of the request being handled, read on demand and never beyond a limit."""

    def __init__(self, conn: _Connection, declared: int | None) -> None:
        self._conn = conn
        self.declared = declared
        self.complete = False

    async def read(self, limit: int) -> bytes:
        """The whole body; :class:`BodyTooLarge` as soon as more than ``limit`` bytes arrive."""
        if self.declared is not None and self.declared > limit:
            raise BodyTooLarge(limit, self.declared)
        await self._conn.continue_if_expected()
        chunks: list[bytes] = []
        size = 0
        deadline = anyio.current_time() + self._conn.limits.body_timeout
        while True:
            event = await self._conn.next_event(self._conn.limits.read_timeout, deadline)
            if isinstance(event, h11.Data):
                size += len(event.data)
                if size > limit:
                    raise BodyTooLarge(limit, self.declared)
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                self.complete = True
                return b"".join(chunks)
            else:
                raise ClientGone(f"unexpected {type(event).__name__} in a request body")


class _Connection:
    def __init__(self, stream: ByteStream, limits: Limits) -> None:
        self.stream = stream
        self.limits = limits
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=limits.header_bytes)
        self.head_bytes = False  # some of the current request's head has arrived

    async def next_event(
        self, timeout: float, deadline: float | None = None
    ) -> h11.Event | type[h11.NEED_DATA] | type[h11.PAUSED]:
        """The next h11 event; waits at most ``timeout`` per read and never past ``deadline``."""
        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            self.h11.receive_data(await self._receive(timeout, deadline))

    async def _receive(self, timeout: float, deadline: float | None) -> bytes:
        wait = timeout
        if deadline is not None:
            wait = min(wait, deadline - anyio.current_time())
            if wait <= 0:
                raise DeadlinePassed("the request took longer than its deadline")
        with anyio.move_on_after(wait):
            try:
                return await self.stream.receive(RECEIVE_CHUNK)
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                return b""
        if deadline is not None and anyio.current_time() >= deadline:
            raise DeadlinePassed("the request took longer than its deadline")
        raise ClientGone("timed out waiting for the client")

    async def next_request(self, first: bool) -> h11.Event | type[h11.NEED_DATA] | type[h11.PAUSED]:
        """The next request's head: idle waits are ``idle_timeout``, the head itself has a total deadline.

        On a new connection the deadline runs from the accept; on a kept-alive one
        from the first byte of the next request.
        """
        limits = self.limits
        self.head_bytes = bool(self.h11.trailing_data[0])
        started = first or self.head_bytes
        deadline = anyio.current_time() + limits.header_timeout if started else None
        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            data = await self._receive(limits.idle_timeout if deadline is None else limits.header_timeout, deadline)
            self.head_bytes = self.head_bytes or bool(data)
            if data and deadline is None:
                deadline = anyio.current_time() + limits.header_timeout
            self.h11.receive_data(data)

    async def send(self, event: h11.Event) -> None:
        data = self.h11.send(event)
        if data:
            with anyio.fail_after(self.limits.send_timeout):
                await self.stream.send(data)

    async def continue_if_expected(self) -> None:
        if self.h11.they_are_waiting_for_100_continue:
            await self.send(h11.InformationalResponse(status_code=100, headers=[]))

    async def respond(self, response: Response, *, close: bool) -> None:
        headers = [
            (b"content-length", str(len(response.body)).encode()),
            *response.headers,
        ]
        if close:
            headers.append((b"connection", b"close"))
        else:
            headers.append((b"keep-alive", f"timeout={int(self.limits.idle_timeout) - 5}".encode()))
        await self.send(h11.Response(status_code=response.status, headers=headers))
        if response.body:
            await self.send(h11.Data(data=response.body))
        await self.send(h11.EndOfMessage())

    async def drain(self) -> None:
        """Discard what is left of a request body (bounded), so the client reads our answer."""
        discarded = 0
        with anyio.move_on_after(self.limits.drain_timeout):
            while discarded <= self.limits.drain_bytes:
                try:
                    event = await self.next_event(self.limits.read_timeout)
                except (ClientGone, h11.RemoteProtocolError):
                    return
                if isinstance(event, h11.Data):
                    discarded += len(event.data)
                else:
                    return


def _request(event: h11.Request, peer: str) -> Request:
    headers: dict[str, bytes] = {}
    for raw_name, value in event.headers:
        name = raw_name.decode("latin-1").lower()
        headers[name] = headers[name] + b", " + bytes(value) if name in headers else bytes(value)
    target = bytes(event.target).decode("latin-1")
    return Request(event.method.decode("latin-1"), target.split("?", 1)[0], headers, peer)


def _declared_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _no_phase(_busy: bool) -> None:
    pass


async def _timed_out(stream: ByteStream) -> None:
    """A best-effort 408 to a client whose request head missed its deadline (h11 cannot answer mid-head)."""
    with anyio.move_on_after(1.0), contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
        await stream.send(b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")


async def serve_connection(
    stream: ByteStream,
    handler: Handler,
    limits: Limits,
    peer: str = "",
    busy: Callable[[bool], None] = _no_phase,
) -> None:
    """Answer requests on one connection until it closes, misbehaves or idles out.

    ``busy`` is told when a request is being answered (True) and when the
    connection waits for the next one (False): only waiting connections may be evicted.
    """
    conn = _Connection(stream, limits)
    first = True
    try:
        while True:
            busy(False)
            try:
                event = await conn.next_request(first)
            except DeadlinePassed:
                if conn.head_bytes:  # a client that never sent a byte gets no unsolicited answer
                    await _timed_out(stream)
                return
            except h11.RemoteProtocolError as exc:
                if conn.h11.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                    status = exc.error_status_hint
                    await conn.respond(Response(status, f"Malformed HTTP request: {exc}.\n".encode()), close=True)
                return
            if not isinstance(event, h11.Request):
                return  # ConnectionClosed, or the client hung up between requests
            first = False
            busy(True)
            request = _request(event, peer)
            body = Body(conn, _declared_length(request))
            try:
                response = await handler(request, body)
            except (ClientGone, h11.RemoteProtocolError):
                raise
            except Exception:
                log.exception("otlp handler failed for %s %s", request.method, request.path)
                response = Response(500, b"Internal error in the receiver; see the bridge log.\n")
            keep_alive = body.complete and conn.h11.our_state is h11.SEND_RESPONSE and not _wants_close(request)
            await conn.respond(response, close=not keep_alive)
            if not keep_alive:
                if not body.complete:
                    await conn.drain()
                return
            conn.h11.start_next_cycle()
    except (ClientGone, h11.RemoteProtocolError, h11.LocalProtocolError, TimeoutError) as exc:
        log.debug("otlp connection from %s ended: %s", peer, exc)
    except (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream):
        pass
    finally:
        with anyio.CancelScope(shield=True):
            await stream.aclose()


def _wants_close(request: Request) -> bool:
    value = request.headers.get("connection", b"").lower()
    return b"close" in value
