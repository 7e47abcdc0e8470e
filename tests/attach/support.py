"""A real ``codex app-server daemon`` in its own temp CODEX_HOME, a user's client of it, and an attached bridge.

The daemon runs inside the fence like every real peer: fenced env
(``peer_env``), ``CODEX_SAFE_ARGS`` (plugins off, persisted by the daemon),
``[analytics] enabled = false`` in config.toml, the project's fake model. It
copies its 404 MB package into ``CODEX_HOME/packages`` (a temp dir on the
same disk) and leaves a self-update process behind that survives
``daemon stop``: :meth:`Daemon.cleanup` kills the daemon and that updater by
the pids they record, and removes the package copy, always.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from bridge.peers import fence
from bridge.peers.install import codex_native_binary
from bridge.sidecar.websocket import WebSocketTransport
from tests.peers.conftest import API_KEY, CodexEnv, make_codex_env, require_fence
from tests.support.host import Host, spawn_bridge

LIVE = "session:live:event"
TRANSITION = "capture-reliability-transition"
Message = dict[str, Any]


def _pid_of(path: Path) -> int | None:
    """A daemon pid file: plain digits or JSON ``{"pid": …}``."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if text.isdigit():
        return int(text)
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        pid = json.loads(text).get("pid")
        return int(pid) if pid else None
    return None


def _kill(pid: int | None) -> None:
    if pid:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


@dataclass
class Daemon:
    cx: CodexEnv
    pids: set[int] = field(default_factory=set)
    pid: int | None = None

    @property
    def socket_path(self) -> Path:
        return self.cx.codex_home / "app-server-control" / "app-server-control.sock"

    @property
    def state_dir(self) -> Path:
        return self.cx.codex_home / "app-server-daemon"

    def _argv(self, *command: str) -> list[str]:
        return [str(codex_native_binary()), *fence.CODEX_SAFE_ARGS, "app-server", "daemon", *command]

    async def start(self) -> None:
        require_fence()
        with anyio.fail_after(120):
            done = await anyio.run_process(self._argv("start"), env=self.cx.env, cwd=self.cx.workdir, check=False)
        out = done.stdout.decode(errors="replace")
        assert done.returncode == 0, f"daemon start failed: {out} {done.stderr.decode(errors='replace')[-2000:]}"
        info = json.loads(out.strip().splitlines()[-1])
        self.pid = int(info["pid"])
        self.pids.add(self.pid)
        self._note_updater()

    def _note_updater(self) -> None:
        updater = _pid_of(self.state_dir / "daemon-updater.pid")
        if updater:
            self.pids.add(updater)

    async def kill(self) -> None:
        """The daemon dies (SIGKILL), as a crash would have it."""
        assert self.pid is not None
        _kill(self.pid)
        with anyio.fail_after(10):
            while self.socket_path.exists() and _alive(self.pid):
                await anyio.sleep(0.05)

    async def cleanup(self) -> None:
        self._note_updater()
        with contextlib.suppress(Exception), anyio.move_on_after(20):
            await anyio.run_process(self._argv("stop"), env=self.cx.env, check=False)
        self._note_updater()
        for pid in self.pids:
            _kill(pid)
        shutil.rmtree(self.cx.codex_home / "packages", ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


@asynccontextmanager
async def codex_daemon(root: Path, base_url: str) -> AsyncIterator[Daemon]:
    require_fence()
    daemon = Daemon(make_codex_env(root, base_url))
    try:
        await daemon.start()
        yield daemon
    finally:
        with anyio.CancelScope(shield=True):
            await daemon.cleanup()


class UserClient:
    """The user's own client of the daemon (what the TUI is): drives threads, answers approvals."""

    def __init__(self, transport: WebSocketTransport, name: str) -> None:
        self.transport = transport
        self.name = name
        self.messages: list[Message] = []
        self.on_server_request: Callable[[Message], Any] | None = None
        self.user_agent = ""
        self._next_id = 0
        self._arrived = anyio.Event()
        self.closed = False

    async def read_loop(self) -> None:
        try:
            while True:
                for frame in await self.transport.receive_batch():
                    assert isinstance(frame, bytes)
                    message: Message = json.loads(frame)
                    self.messages.append(message)
                    if "method" in message and "id" in message and self.on_server_request is not None:
                        self.on_server_request(message)
                self._arrived.set()
                self._arrived = anyio.Event()
        except anyio.EndOfStream:
            self.closed = True
            self._arrived.set()

    async def send(self, message: Message) -> None:
        await self.transport.send(json.dumps(message).encode())

    async def call(self, method: str, params: Any = None, timeout: float = 30) -> Any:
        request_id = self._next_id
        self._next_id += 1
        message: Message = {"id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        await self.send(message)
        answer = await self.wait_for(lambda m: m.get("id") == request_id and "method" not in m, timeout)
        if "error" in answer:
            raise AssertionError(f"{method}: {answer['error']}")
        return answer.get("result")

    async def wait_for(self, predicate: Callable[[Message], bool], timeout: float = 30, start: int = 0) -> Message:
        index = start
        with anyio.fail_after(timeout):
            while True:
                while index < len(self.messages):
                    if predicate(self.messages[index]):
                        return self.messages[index]
                    index += 1
                assert not self.closed, "the daemon closed the user's connection"
                await self._arrived.wait()

    async def start_session(self) -> None:
        info = await self.call("initialize", {"clientInfo": {"name": self.name, "version": "1.2.3", "title": "user"}})
        self.user_agent = info["userAgent"]
        await self.send({"method": "initialized"})
        await self.call("account/login/start", {"type": "apiKey", "apiKey": API_KEY})
        await self.wait_for(lambda m: m.get("method") == "account/login/completed")

    async def start_thread(self, cwd: Path, approval_policy: str = "never") -> str:
        result = await self.call(
            "thread/start", {"cwd": str(cwd), "approvalPolicy": approval_policy, "sandbox": "workspace-write"}
        )
        thread_id: str = result["thread"]["id"]
        return thread_id

    async def start_turn(self, thread_id: str, text: str) -> str:
        result = await self.call(
            "turn/start", {"threadId": thread_id, "input": [{"type": "text", "text": text, "text_elements": []}]}
        )
        turn_id: str = result["turn"]["id"]
        return turn_id

    async def wait_turn(self, turn_id: str, timeout: float = 90) -> Message:
        return await self.wait_for(
            lambda m: m.get("method") == "turn/completed" and m["params"]["turn"]["id"] == turn_id, timeout
        )

    def completed_items(self, thread_id: str) -> dict[str, Message]:
        """Final items as this client saw them live (item/completed), in order."""
        out: dict[str, Message] = {}
        for m in self.messages:
            if m.get("method") == "item/completed" and m["params"]["threadId"] == thread_id:
                out[m["params"]["item"]["id"]] = m["params"]["item"]
        return out

    async def turns(self, thread_id: str) -> list[Message]:
        page = await self.call(
            "thread/turns/list", {"threadId": thread_id, "itemsView": "full", "sortDirection": "asc"}
        )
        turns: list[Message] = page["data"]
        return turns


@asynccontextmanager
async def user_client(daemon: Daemon, name: str = "user_tui") -> AsyncIterator[UserClient]:
    transport = await WebSocketTransport.connect_unix(str(daemon.socket_path), max_frame_bytes=64 << 20)
    client = UserClient(transport, name)
    async with anyio.create_task_group() as tg:
        tg.start_soon(client.read_loop)
        try:
            yield client
        finally:
            await transport.aclose()
            tg.cancel_scope.cancel()


def attach_config(daemon: Daemon, **extra: Any) -> tuple[dict[str, Any], dict[str, str]]:
    config: dict[str, Any] = {
        "appServerAuthMode": "apikey",
        "autoIngestEnabled": True,
        "otlpReceiver": {"port": 0},
        "codex": {"connection": "attach", "home": str(daemon.cx.codex_home)},
    }
    config.update(extra)
    env = dict(daemon.cx.env)
    env.pop("CODEX_HOME", None)  # the socket is found through codex.home
    return config, env


@asynccontextmanager
async def attached_bridge(tmp_path: Path, daemon: Daemon, *, healthy: bool = True, **extra: Any) -> AsyncIterator[Host]:
    """A bridge attached to ``daemon`` by the host's ``start_codex_app_server``, initialized (and healthy)."""
    config, env = attach_config(daemon, **extra)
    async with spawn_bridge(tmp_path / "bridge", config=config, env=env) as host:
        status = await host.call("start_codex_app_server", {"connection": "attach"})
        assert status["connection"] == "attach"
        await host.wait_for(
            "codex-app-server-status",
            lambda p: p["initialized"] and (p["streamHealthy"] or not healthy) and p["connection"] == "attach",
            timeout=30,
        )
        yield host


def live(host: Host) -> list[Message]:
    return [p for m, p in host.notifications if m == LIVE]


async def captured_when(host: Host, thread_id: str, done: Callable[[Message], bool], timeout: float = 60) -> Message:
    """Poll ``get_captured_thread`` until ``done(thread)`` (back-fill runs after the turn)."""
    with anyio.fail_after(timeout):
        while True:
            with contextlib.suppress(Exception):
                thread: Message = await host.call("get_captured_thread", {"threadId": thread_id})
                if done(thread):
                    return thread
            await anyio.sleep(0.2)


def item_ids(thread: Message) -> list[str]:
    return [i["itemId"] for t in thread["turns"] for i in t["items"]]
