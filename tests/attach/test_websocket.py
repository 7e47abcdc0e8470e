"""The WebSocket frame transport against an in-process WebSocket server on a Unix socket."""

from __future__ import annotations

import contextlib
from pathlib import Path

import anyio
import pytest
from anyio.abc import SocketStream
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import AcceptConnection, CloseConnection, Ping, Pong, Request, TextMessage

from bridge.sidecar.framing import Oversized
from bridge.sidecar.websocket import WebSocketConnectError, WebSocketTransport


class Server:
    """A tiny WebSocket server: records what it got, sends what the test scripts."""

    def __init__(self, path: Path, accept: bool = True) -> None:
        self.path = path
        self.accept = accept
        self.request: Request | None = None
        self.received: list[str] = []
        self.pongs = 0
        self.closed_by_client = False
        self.ws = WSConnection(ConnectionType.SERVER)
        self.stream: SocketStream | None = None
        self.ready = anyio.Event()

    async def serve(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        listener = await anyio.create_unix_listener(self.path)
        task_status.started()
        async with listener:
            stream = await listener.accept()
            self.stream = stream
            async with stream:
                while True:
                    try:
                        data = await stream.receive()
                    except (anyio.EndOfStream, anyio.BrokenResourceError):
                        return
                    self.ws.receive_data(data)
                    for event in self.ws.events():
                        if isinstance(event, Request):
                            self.request = event
                            if not self.accept:
                                from wsproto.events import RejectConnection

                                await stream.send(self.ws.send(RejectConnection(status_code=403)))
                                return
                            await stream.send(self.ws.send(AcceptConnection()))
                            self.ready.set()
                        elif isinstance(event, TextMessage):
                            self.received.append(event.data)
                        elif isinstance(event, Pong):
                            self.pongs += 1
                        elif isinstance(event, CloseConnection):
                            if self.ws.state is ConnectionState.REMOTE_CLOSING:  # the client began it
                                self.closed_by_client = True
                                with contextlib.suppress(anyio.BrokenResourceError):
                                    await stream.send(self.ws.send(event.response()))
                            return

    async def send(self, data: bytes) -> None:
        assert self.stream is not None
        await self.stream.send(data)


async def test_frames_both_ways_fragments_oversize_ping_and_close(tmp_path: Path) -> None:
    server = Server(tmp_path / "s.sock")
    async with anyio.create_task_group() as tg:
        await tg.start(server.serve)
        transport = await WebSocketTransport.connect_unix(str(server.path), max_frame_bytes=64, read_chunk=16)
        await server.ready.wait()
        assert server.request is not None and server.request.target == "/rpc"
        assert server.request.extensions == []  # no permessage-deflate offered
        ws = server.ws
        await server.send(ws.send(TextMessage('{"method":"a"}')))
        await server.send(ws.send(TextMessage('{"method":', message_finished=False)))
        await server.send(ws.send(TextMessage('"b"}', message_finished=True)))
        await server.send(ws.send(TextMessage("x" * 100)))  # over the 64-byte limit
        await server.send(ws.send(Ping(b"hi")))
        await server.send(ws.send(TextMessage('{"method":"é"}')))
        frames: list[object] = []
        with anyio.fail_after(5):
            while len(frames) < 4:
                frames.extend(await transport.receive_batch())
        assert frames[:2] == [b'{"method":"a"}', b'{"method":"b"}']
        assert isinstance(frames[2], Oversized) and frames[2].size == 100
        assert frames[3] == '{"method":"é"}'.encode()
        assert transport.peak_buffered <= 64
        await transport.send(b'{"id":1,"method":"initialize"}')
        with anyio.fail_after(5):
            while not server.received or not server.pongs:
                await anyio.sleep(0.01)
        assert server.received == ['{"id":1,"method":"initialize"}']
        # the server closes: the client answers and ends the stream
        await server.send(ws.send(CloseConnection(code=1001)))
        with anyio.fail_after(5), pytest.raises(anyio.EndOfStream):
            while True:
                await transport.receive_batch()
        assert transport.close_code == 1001
        with pytest.raises(anyio.ClosedResourceError):
            await transport.send(b"{}")
        await transport.aclose()


async def test_client_close_sends_a_close_frame(tmp_path: Path) -> None:
    server = Server(tmp_path / "s.sock")
    async with anyio.create_task_group() as tg:
        await tg.start(server.serve)
        transport = await WebSocketTransport.connect_unix(str(server.path), max_frame_bytes=1024)
        await transport.aclose()
        with anyio.fail_after(5):
            while not server.closed_by_client:
                await anyio.sleep(0.01)
        with pytest.raises(anyio.EndOfStream):
            await transport.receive_batch()


async def test_connect_errors_say_why(tmp_path: Path) -> None:
    with pytest.raises(WebSocketConnectError, match="cannot connect"):
        await WebSocketTransport.connect_unix(str(tmp_path / "missing.sock"), max_frame_bytes=1024)
    server = Server(tmp_path / "r.sock", accept=False)
    async with anyio.create_task_group() as tg:
        await tg.start(server.serve)
        with pytest.raises(WebSocketConnectError, match="refused"):
            await WebSocketTransport.connect_unix(str(server.path), max_frame_bytes=1024)
