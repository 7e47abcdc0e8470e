"""An in-memory codex behind the :class:`~bridge.sidecar.connection.CodexConnection` protocol.

Two anyio memory object streams stand in for codex's stdio; a small fake on the
far side answers ``initialize``, ``account/read`` (an apiKey account) and
``thread/loaded/list`` (no threads) and ends like a process: its stdin closed
(a stop), or :meth:`MemoryConnection.crash`. The supervisor runs unchanged on
it, so its restarts, generations and published state are tested without a
subprocess. :class:`MemoryDaemon` is the user's daemon for attach mode: down
(connecting fails as with no socket) or up, and it can close a connection.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from bridge import errors
from bridge.errors import BridgeError
from bridge.sidecar.attach import OBSERVER_CLIENT_NAME, OBSERVER_CLIENT_TITLE, imposed_originator
from bridge.sidecar.connection import Kind
from bridge.sidecar.framing import Frame, FrameTransport
from bridge.sidecar.process import SpawnSpec, StderrRing
from bridge.sidecar.protocol import ClientInfo
from bridge.sidecar.rpc import RpcClient
from bridge.sidecar.websocket import WebSocketConnectError

USER_AGENT = "capture_bridge/0.169.0 (in-memory codex)"


class MemoryTransport:
    """A frame transport over two memory object streams."""

    def __init__(self, inbound: MemoryObjectReceiveStream[bytes], outbound: MemoryObjectSendStream[bytes]) -> None:
        self._in = inbound
        self._out = outbound

    async def receive_batch(self) -> list[Frame]:
        try:
            frames: list[Frame] = [await self._in.receive()]
        except anyio.EndOfStream:
            raise
        while True:
            try:
                frames.append(self._in.receive_nowait())
            except (anyio.WouldBlock, anyio.EndOfStream):
                return frames

    async def send(self, frame: bytes) -> None:
        await self._out.send(frame)

    async def aclose(self) -> None:
        await self._out.aclose()


class MemoryConnection:
    """A spawned codex, in memory: pid ``1000 + n``, a fake that answers the handshake."""

    kind: Kind = "spawn"
    observer = False

    def __init__(self, number: int, *, account: str | None = "apiKey") -> None:
        self.pid: int | None = 1000 + number
        self.where = "memory://codex"
        self.stderr: StderrRing | None = StderrRing()
        self.account = account
        self.requests: list[str] = []
        self.client_names: list[str] = []  # clientInfo.name of each initialize
        self.user_agent = USER_AGENT  # what initialize answers
        to_codex, self._codex_in = anyio.create_memory_object_stream[bytes](100)
        self._codex_out, from_codex = anyio.create_memory_object_stream[bytes](100)
        self.transport: FrameTransport = MemoryTransport(from_codex, to_codex)
        self._exited = anyio.Event()
        self.code: int | None = None

    def bind(self, client: RpcClient) -> None:
        return None

    def client_info(self, name: str, version: str, title: str) -> ClientInfo:
        return ClientInfo(name, version, title)

    def imposed_originator(self, user_agent: str) -> bool:
        return False

    async def pump(self) -> None:
        """The fake codex: answer what the bridge sends until its stdin closes."""
        async for frame in self._codex_in:
            msg = json.loads(frame)
            if "id" not in msg or "method" not in msg:
                continue  # a notification (initialized) or a reply
            self.requests.append(msg["method"])
            reply: dict[str, Any] = {"id": msg["id"]}
            if msg["method"] == "initialize":
                self.client_names.append(msg["params"]["clientInfo"]["name"])
                reply["result"] = {"userAgent": self.user_agent}
            elif msg["method"] == "account/read":
                account = {"type": self.account} if self.account else None
                reply["result"] = {"account": account, "requiresOpenaiAuth": True}
            elif msg["method"] == "thread/loaded/list":
                reply["result"] = {"data": []}
            else:
                reply["error"] = {"code": -32601, "message": f"unknown method {msg['method']}"}
            try:
                await self._codex_out.send(json.dumps(reply).encode())
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                return
        self._end(0)  # stdin closed: a clean exit

    async def notify(self, method: str, params: dict[str, Any]) -> None:
        """Codex sends a notification."""
        await self._codex_out.send(json.dumps({"method": method, "params": params}).encode())

    def crash(self, code: int = 1) -> None:
        """The process dies at once."""
        self._end(code)

    def _end(self, code: int) -> None:
        if not self._exited.is_set():
            self.code = code
            self._codex_out.close()
            self._exited.set()

    async def wait(self) -> int | None:
        await self._exited.wait()
        return self.code

    async def stop(self, *, eof_grace: float, term_grace: float, kill_grace: float) -> int | None:
        await self.transport.aclose()
        with anyio.move_on_after(eof_grace):
            await self._exited.wait()
        self._end(-9)  # past the grace: killed
        return self.code

    def closed_error(self, method: str) -> BridgeError:
        return BridgeError(errors.SIDECAR_NOT_RUNNING, f"the in-memory codex ended before answering {method}")

    def stopping_note(self) -> str:
        return "Stopping codex app-server."

    def stopped_note(self, code: int | None) -> str:
        return f"codex app-server stopped (exit code {code})."


class MemorySpawner:
    """``SupervisorOptions.spawn``: every spawn opens the next :class:`MemoryConnection`."""

    def __init__(self, *, account: str | None = "apiKey") -> None:
        self.account = account
        self.connections: list[MemoryConnection] = []
        self.specs: list[SpawnSpec] = []

    async def __call__(self, spec: SpawnSpec, max_frame_bytes: int) -> MemoryConnection:
        self.specs.append(spec)
        conn = MemoryConnection(len(self.connections) + 1, account=self.account)
        self.connections.append(conn)
        return conn


class MemoryDaemonConnection(MemoryConnection):
    """One connection to the in-memory daemon: no pid and no stderr (the daemon is the user's)."""

    kind: Kind = "attach"
    observer = True

    def __init__(self, number: int, socket_path: str, *, account: str | None = "apiKey") -> None:
        super().__init__(number, account=account)
        self.pid = None
        self.stderr = None
        self.where = socket_path

    def client_info(self, name: str, version: str, title: str) -> ClientInfo:
        return ClientInfo(OBSERVER_CLIENT_NAME, version, OBSERVER_CLIENT_TITLE)

    def imposed_originator(self, user_agent: str) -> bool:
        return imposed_originator(user_agent)

    def close(self, code: int = 1001) -> None:
        """The daemon closes the connection (it stopped or restarted)."""
        self._end(code)

    async def stop(self, *, eof_grace: float, term_grace: float, kill_grace: float) -> int | None:
        """Disconnecting never stops the daemon: no exit code."""
        await super().stop(eof_grace=eof_grace, term_grace=term_grace, kill_grace=kill_grace)
        return None


class MemoryDaemon:
    """``SupervisorOptions.connect``: the user's daemon in memory; while ``up`` is false nothing listens."""

    def __init__(self, *, up: bool = True, account: str | None = "apiKey", user_agent: str = USER_AGENT) -> None:
        self.up = up
        self.account = account
        self.user_agent = user_agent
        self.attempts = 0  # every connection attempt, failed or not
        self.connections: list[MemoryDaemonConnection] = []

    async def __call__(self, socket_path: str, max_frame_bytes: int, timeout: float) -> MemoryDaemonConnection:
        self.attempts += 1
        if not self.up:
            raise WebSocketConnectError(f"cannot connect to {socket_path}: nothing listens there")
        conn = MemoryDaemonConnection(len(self.connections) + 1, socket_path, account=self.account)
        conn.user_agent = self.user_agent
        self.connections.append(conn)
        return conn
