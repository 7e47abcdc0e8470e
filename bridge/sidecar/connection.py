"""A connection to codex: a spawned ``codex app-server``, or the user's daemon's socket.

Like the MCP python-sdk's transports, a :class:`CodexConnection` only yields a
frame transport (:class:`~bridge.sidecar.framing.FrameTransport`) and knows how
its peer ends; the JSON-RPC client, the session (:mod:`.session`) and the
supervisor are the same for both. What differs in the connection itself lives
here and nowhere else: how it is opened and stopped, whether it has a pid and
a stderr, how it introduces itself at ``initialize`` (and whether the answer
shows it imposed an originator), and how its messages name it. What differs in
how the supervisor runs it (restart or reconnect, who drives the handshake) is
the mode's (:mod:`.mode`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Protocol

import anyio

from bridge import errors
from bridge.errors import BridgeError
from bridge.sidecar.attach import OBSERVER_CLIENT_NAME, OBSERVER_CLIENT_TITLE, imposed_originator
from bridge.sidecar.framing import FrameTransport, JsonlTransport
from bridge.sidecar.process import SidecarProcess, SpawnSpec, StderrRing
from bridge.sidecar.protocol import ClientInfo
from bridge.sidecar.rpc import RpcClient

if TYPE_CHECKING:  # the WebSocket stack (wsproto) is imported only when a DaemonConnection connects
    from bridge.sidecar.websocket import WebSocketTransport

Kind = Literal["spawn", "attach"]


class CodexConnection(Protocol):
    """One connection to codex, from open to end."""

    kind: Kind
    observer: bool  # only watches: server requests are the user's own client's to answer
    pid: int | None  # a spawned process's; None for the daemon (the user's process)
    where: str  # the binary, or the daemon's control socket
    stderr: StderrRing | None  # a spawned process's stderr; a daemon's is its own log
    transport: FrameTransport

    def bind(self, client: RpcClient) -> None:
        """The client reading :attr:`transport` (its end is the end of a socket connection)."""

    def client_info(self, name: str, version: str, title: str) -> ClientInfo:
        """What the bridge says it is at ``initialize``."""

    def imposed_originator(self, user_agent: str) -> bool:
        """Whether ``initialize``'s answer shows the bridge became the originator of someone else's codex."""

    async def pump(self) -> None:
        """Whatever must run beside the client while the connection lives (stderr copying)."""

    async def wait(self) -> int | None:
        """Until the connection ends; the exit code (a socket's close code)."""

    async def stop(self, *, eof_grace: float, term_grace: float, kill_grace: float) -> int | None:
        """End it for good: a process is stopped (never left behind), a socket is disconnected."""

    def closed_error(self, method: str) -> BridgeError:
        """The error for a request the connection ended before answering."""

    def stopping_note(self) -> str: ...

    def stopped_note(self, code: int | None) -> str: ...


class SpawnedConnection:
    """A ``codex app-server`` the bridge spawned: JSONL over its stdio, its own process group."""

    kind: Kind = "spawn"
    observer = False

    def __init__(self, proc: SidecarProcess, *, max_frame_bytes: int) -> None:
        self.proc = proc
        self.pid: int | None = proc.pid
        self.where = proc.spec.binary
        self.stderr: StderrRing | None = proc.stderr
        self.transport: FrameTransport = JsonlTransport(
            proc.stdout, proc.process.stdin, max_frame_bytes=max_frame_bytes
        )

    @classmethod
    async def spawn(cls, spec: SpawnSpec, *, max_frame_bytes: int) -> SpawnedConnection:
        """Raises -32015 when the binary cannot be started."""
        return cls(await SidecarProcess.spawn(spec), max_frame_bytes=max_frame_bytes)

    def bind(self, client: RpcClient) -> None:
        return None

    def client_info(self, name: str, version: str, title: str) -> ClientInfo:
        return ClientInfo(name, version, title)

    def imposed_originator(self, user_agent: str) -> bool:
        return False  # the bridge's own codex: its originator is the bridge

    async def pump(self) -> None:
        await self.proc.pump_stderr()

    async def wait(self) -> int | None:
        return await self.proc.wait()

    async def stop(self, *, eof_grace: float, term_grace: float, kill_grace: float) -> int | None:
        return await self.proc.stop(eof_grace=eof_grace, term_grace=term_grace, kill_grace=kill_grace)

    def closed_error(self, method: str) -> BridgeError:
        code = errors.SIDECAR_SPAWN_FAILED if method == "initialize" else errors.SIDECAR_NOT_RUNNING
        return BridgeError(
            code,
            f"codex app-server (pid {self.pid}, {self.where}) closed its connection before "
            f"answering {method}: it exited or crashed. See get_codex_app_server_status.",
            path=self.where,
        )

    def stopping_note(self) -> str:
        return "Stopping codex app-server."

    def stopped_note(self, code: int | None) -> str:
        return f"codex app-server stopped (exit code {code})."


class DaemonConnection:
    """One WebSocket connection to the user's ``codex app-server daemon`` (docs/attach.md).

    The bridge is an observer: it never becomes the daemon's originator and never
    answers server requests. Stopping disconnects; the daemon keeps running.
    """

    kind: Kind = "attach"
    observer = True
    pid: int | None = None
    stderr: StderrRing | None = None

    def __init__(self, transport: WebSocketTransport, socket_path: str) -> None:
        self.transport: FrameTransport = transport
        self._ws = transport
        self.where = socket_path
        self._client: RpcClient | None = None

    @classmethod
    async def connect(cls, socket_path: str, *, max_frame_bytes: int, timeout: float) -> DaemonConnection:
        """Raises :class:`~bridge.sidecar.websocket.WebSocketConnectError` when the daemon is not there."""
        from bridge.sidecar.websocket import WebSocketTransport

        transport = await WebSocketTransport.connect_unix(socket_path, max_frame_bytes=max_frame_bytes, timeout=timeout)
        return cls(transport, socket_path)

    def bind(self, client: RpcClient) -> None:
        self._client = client

    def client_info(self, name: str, version: str, title: str) -> ClientInfo:
        return ClientInfo(OBSERVER_CLIENT_NAME, version, OBSERVER_CLIENT_TITLE)  # never the daemon's originator

    def imposed_originator(self, user_agent: str) -> bool:
        return imposed_originator(user_agent)

    async def pump(self) -> None:
        return None

    async def wait(self) -> int | None:
        """Until the connection ends (the daemon closed it, died, or the bridge disconnected)."""
        assert self._client is not None
        await self._client.ended.wait()
        return self._ws.close_code or 0

    async def stop(self, *, eof_grace: float, term_grace: float, kill_grace: float) -> int | None:
        """Disconnect (a close frame, then the socket); never signals the daemon."""
        await self._ws.aclose()
        if self._client is not None:
            with anyio.move_on_after(eof_grace + term_grace + kill_grace):
                await self._client.ended.wait()
        return None

    def closed_error(self, method: str) -> BridgeError:
        return BridgeError(
            errors.SIDECAR_NOT_RUNNING,
            f"The codex app-server daemon ({self.where}) closed the connection before answering "
            f"{method}; the bridge reconnects by itself. See get_codex_app_server_status.",
            path=self.where,
        )

    def stopping_note(self) -> str:
        return "Disconnecting from the codex app-server daemon."

    def stopped_note(self, code: int | None) -> str:
        return "Disconnected from the codex app-server daemon; the daemon keeps running."
