"""A WebSocket frame transport over a Unix socket: the codex app-server daemon's control socket.

The daemon (``codex app-server daemon``) speaks JSON-RPC as one message per
WebSocket text frame behind ``GET /rpc`` on
``$CODEX_HOME/app-server-control/app-server-control.sock`` (no
``permessage-deflate``). :class:`WebSocketTransport` implements
:class:`~bridge.sidecar.framing.FrameTransport`, so the codex RPC client is
the same in both connection modes: attach is a transport swap.

The WebSocket protocol itself is wsproto's (sans-I/O, by the h11 authors),
driven here over an anyio Unix stream. Like :class:`JsonlTransport`, a
message never grows past the frame limit in memory: an oversized message is
discarded as it streams in and reported as an :class:`Oversized` marker.
Pings are answered; a close from the daemon ends the stream.
"""

from __future__ import annotations

import contextlib
import os

import anyio
from anyio.abc import ByteStream
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from bridge.sidecar.framing import READ_CHUNK, Frame, Oversized

RPC_TARGET = "/rpc"
CLOSE_NORMAL = 1000


SUN_PATH_MAX = 107  # bytes in sockaddr_un.sun_path, less the terminating NUL (Linux)


def _connectable(path: str) -> str:
    """``path``, or the socket it links to when ``path`` is too long for a Unix socket address.

    The daemon's ``app-server-control.sock`` is a link to a socket under the
    system temp dir for exactly this reason: a deep ``CODEX_HOME`` would not fit.
    """
    if len(os.fsencode(path)) <= SUN_PATH_MAX:
        return path
    target = os.path.realpath(path)
    return target if len(os.fsencode(target)) < len(os.fsencode(path)) else path


class WebSocketConnectError(Exception):
    """The control socket could not be reached or refused the WebSocket upgrade."""


class WebSocketTransport:
    """One JSON-RPC message per WebSocket text frame, over an anyio byte stream."""

    def __init__(
        self,
        stream: ByteStream,
        ws: WSConnection,
        *,
        max_frame_bytes: int,
        read_chunk: int = READ_CHUNK,
    ) -> None:
        self._stream = stream
        self._ws = ws
        self._max = max_frame_bytes
        self._chunk = read_chunk
        self._partial = bytearray()
        self._discarding = False
        self._discarded = 0
        self._ready: list[Frame] = []
        self._eof = False
        self._write_lock = anyio.Lock()
        self.peak_buffered = 0
        self.close_code: int | None = None  # the daemon's close code, when it closed

    @classmethod
    async def connect_unix(
        cls,
        path: str,
        *,
        max_frame_bytes: int,
        timeout: float = 5.0,
        target: str = RPC_TARGET,
        read_chunk: int = READ_CHUNK,
    ) -> WebSocketTransport:
        """Connect to ``path`` and upgrade to a WebSocket at ``target``.

        Raises :class:`WebSocketConnectError` (with a sentence saying why).
        """
        try:
            with anyio.fail_after(timeout):
                stream: ByteStream = await anyio.connect_unix(_connectable(path))
        except (OSError, TimeoutError) as exc:
            reason = (exc.strerror if isinstance(exc, OSError) else None) or str(exc) or type(exc).__name__
            raise WebSocketConnectError(f"cannot connect to {path}: {reason}") from exc
        ws = WSConnection(ConnectionType.CLIENT)
        transport = cls(stream, ws, max_frame_bytes=max_frame_bytes, read_chunk=read_chunk)
        try:
            with anyio.fail_after(timeout):
                await transport._upgrade(target)
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                with contextlib.suppress(OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
                    await stream.aclose()
            if isinstance(exc, TimeoutError):
                raise WebSocketConnectError(f"{path} did not complete the WebSocket upgrade in time") from exc
            if isinstance(exc, (OSError, anyio.EndOfStream, anyio.BrokenResourceError, RemoteProtocolError)):
                why = str(exc) or type(exc).__name__
                raise WebSocketConnectError(f"{path} broke off the WebSocket upgrade: {why}") from exc
            raise
        return transport

    async def _upgrade(self, target: str) -> None:
        # No extensions offered: the daemon does not compress, and one frame is one message.
        await self._stream.send(self._ws.send(Request(host="localhost", target=target)))
        while True:
            chunk = await self._stream.receive(self._chunk)
            self._ws.receive_data(chunk)
            for event in self._ws.events():
                if isinstance(event, AcceptConnection):
                    await self._handle_events()  # frames that came with the answer
                    return
                if isinstance(event, (RejectConnection, RejectData)):
                    status = getattr(event, "status_code", None)
                    raise WebSocketConnectError(f"the WebSocket upgrade was refused (HTTP {status})")

    # --- receiving --------------------------------------------------------

    async def receive_batch(self) -> list[Frame]:
        while True:
            if self._ready:
                out, self._ready = self._ready, []
                return out
            if self._eof:
                raise anyio.EndOfStream
            try:
                chunk = await self._stream.receive(self._chunk)
            except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
                self._eof = True
                continue
            try:
                self._ws.receive_data(chunk)
                await self._handle_events()
            except RemoteProtocolError:
                self._eof = True  # a broken WebSocket stream cannot be resynchronised

    async def _handle_events(self) -> None:
        for event in self._ws.events():
            if isinstance(event, (TextMessage, BytesMessage)):
                self._take(event)
            elif isinstance(event, Ping):
                await self._write_quietly(self._ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                self.close_code = event.code
                self._eof = True
                if self._ws.state is ConnectionState.REMOTE_CLOSING:
                    await self._write_quietly(self._ws.send(event.response()))

    def _take(self, event: TextMessage | BytesMessage) -> None:
        data = event.data
        piece = data.encode() if isinstance(data, str) else bytes(data)
        if self._discarding:
            self._discarded += len(piece)
        elif len(self._partial) + len(piece) > self._max:
            self._discarding = True
            self._discarded = len(self._partial) + len(piece)
            self._partial.clear()
        else:
            self._partial += piece
            if len(self._partial) > self.peak_buffered:
                self.peak_buffered = len(self._partial)
        if not event.message_finished:
            return
        if self._discarding:
            self._ready.append(Oversized(self._discarded))
            self._discarding = False
            self._discarded = 0
        elif self._partial.strip():
            self._ready.append(bytes(self._partial))
        self._partial.clear()

    # --- sending ----------------------------------------------------------

    async def send(self, frame: bytes) -> None:
        if self._eof or self._ws.state is not ConnectionState.OPEN:
            raise anyio.ClosedResourceError
        try:
            data = self._ws.send(TextMessage(data=frame.decode()))
        except LocalProtocolError as exc:
            raise anyio.ClosedResourceError from exc
        async with self._write_lock:
            await self._stream.send(data)

    async def _write_quietly(self, data: bytes) -> None:
        with contextlib.suppress(OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
            async with self._write_lock:
                await self._stream.send(data)

    async def aclose(self) -> None:
        """Say goodbye (a close frame, best effort) and close the socket; the reader then ends."""
        with anyio.CancelScope(shield=True):
            if self._ws.state is ConnectionState.OPEN:
                with contextlib.suppress(LocalProtocolError):
                    with anyio.move_on_after(0.5):
                        await self._write_quietly(self._ws.send(CloseConnection(code=CLOSE_NORMAL)))
            self._eof = True
            with contextlib.suppress(OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
                await self._stream.aclose()
