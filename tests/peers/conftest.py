"""Shared fixtures for tests that drive the real codex app-server (inside the fence).

- ``fake_model``: the project's Responses-API fake (bridge.drill.fake_model),
  running on its own loop in a background thread.
- ``codex_env``: a fresh HOME/CODEX_HOME whose config.toml points codex at the
  fake, plus the fenced environment (``peer_env``) and a work dir.
- ``spawn_codex``: ``async with spawn_codex(codex_env) as cx:`` starts the
  native codex (``CODEX_SAFE_ARGS`` + ``app-server``) in its own process group
  and gives a :class:`CodexClient`, a tiny raw JSONL client. It refuses (fails
  the test) when the process is not inside the loopback-only fence.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

from bridge.drill.fake_model import FakeModel, fake_model_in_thread
from bridge.drill.peer_home import codex_config_toml
from bridge.peers import fence
from bridge.peers.install import codex_native_binary

API_KEY = "sk-test-capture-bridge-0000000000000000"
CLIENT_INFO = {"name": "capture_bridge_tests", "title": "capture-bridge tests", "version": "0.1.0"}
MAX_LINE = 64 * 1024 * 1024

Message = dict[str, Any]
ServerRequestHandler = Callable[[Message], "Message | None"]


def require_fence() -> None:
    """Fail (never skip) when real peers could reach anything but loopback."""
    if not fence.isolated():
        pytest.fail(
            "not inside the loopback-only fence: run real-peer tests as "
            "`.venv/bin/python -m bridge.peers.fence -- .venv/bin/pytest tests/peers` "
            f"(interfaces up: {fence.interfaces()})"
        )


@dataclass
class CodexEnv:
    home: Path
    codex_home: Path
    workdir: Path
    config_path: Path
    env: dict[str, str]
    base_url: str
    api_key: str = API_KEY


@pytest.fixture
def fake_model() -> Iterator[FakeModel]:
    with fake_model_in_thread() as fake:
        yield fake


def make_codex_env(root: Path, base_url: str) -> CodexEnv:
    home = root / "home"
    env = fence.peer_env(dict(os.environ), home)
    codex_home = Path(env["CODEX_HOME"])
    config_path = codex_home / "config.toml"
    config_path.write_text(codex_config_toml(base_url))
    workdir = root / "work"
    workdir.mkdir(parents=True, exist_ok=True)
    return CodexEnv(home, codex_home, workdir, config_path, env, base_url)


@pytest.fixture
def codex_env(tmp_path: Path, fake_model: FakeModel) -> CodexEnv:
    return make_codex_env(tmp_path, fake_model.base_url)


class CodexError(Exception):
    def __init__(self, method: str, error: Any) -> None:
        super().__init__(f"{method}: {error}")
        self.error = error


class CodexClient:
    """Raw newline-delimited JSON-RPC to one codex app-server (no jsonrpc field, as codex speaks)."""

    def __init__(self, process: anyio.abc.Process) -> None:
        self.process = process
        self.messages: list[Message] = []  # every server->client message, in arrival order
        self.raw_lines: list[bytes] = []  # the same, as codex wrote them
        self.sent: list[Message] = []
        self.on_server_request: ServerRequestHandler | None = None
        self._next_id = 0
        self._arrived = anyio.Event()
        self._send_lock = anyio.Lock()

    async def _send(self, message: Message) -> None:
        assert self.process.stdin is not None
        async with self._send_lock:
            self.sent.append(message)
            await self.process.stdin.send(json.dumps(message).encode() + b"\n")

    async def read_loop(self) -> None:
        assert self.process.stdout is not None
        reader = BufferedByteReceiveStream(self.process.stdout)
        while True:
            try:
                line = await reader.receive_until(b"\n", MAX_LINE)
            except (anyio.EndOfStream, anyio.IncompleteRead, anyio.ClosedResourceError):
                break
            if not line.strip():
                continue
            message: Message = json.loads(line)
            self.raw_lines.append(line.strip())
            self.messages.append(message)
            if "method" in message and "id" in message and self.on_server_request is not None:
                result = self.on_server_request(message)
                if result is not None:
                    await self._send({"id": message["id"], "result": result})
            self._arrived.set()
            self._arrived = anyio.Event()
        self._arrived.set()

    async def notify(self, method: str, params: Any = None) -> None:
        message: Message = {"method": method}
        if params is not None:
            message["params"] = params
        await self._send(message)

    async def respond(self, request_id: Any, result: Any) -> None:
        await self._send({"id": request_id, "result": result})

    async def call(self, method: str, params: Any = None, timeout: float = 30) -> Any:
        """Send a request and return its result (raises :class:`CodexError` on an error answer)."""
        request_id = self._next_id
        self._next_id += 1
        message: Message = {"method": method, "id": request_id}
        if params is not None:
            message["params"] = params
        await self._send(message)
        answer = await self.wait_for(lambda m: m.get("id") == request_id and "method" not in m, timeout)
        if "error" in answer:
            raise CodexError(method, answer["error"])
        return answer.get("result")

    async def wait_for(self, predicate: Callable[[Message], bool], timeout: float = 30, start: int = 0) -> Message:
        """The first message (from index ``start``) matching ``predicate``, waiting for it."""
        index = start
        with anyio.fail_after(timeout):
            while True:
                while index < len(self.messages):
                    if predicate(self.messages[index]):
                        return self.messages[index]
                    index += 1
                if self.process.returncode is not None and index >= len(self.messages):
                    raise AssertionError(f"codex exited ({self.process.returncode}) before the awaited message")
                await self._arrived.wait()

    def notifications(self, method: str | None = None) -> list[Message]:
        return [
            m for m in self.messages if "method" in m and "id" not in m and (method is None or m["method"] == method)
        ]

    def server_requests(self, method: str | None = None) -> list[Message]:
        return [m for m in self.messages if "method" in m and "id" in m and (method is None or m["method"] == method)]

    async def start_session(self, api_key: str = API_KEY) -> Message:
        """initialize → initialized → account/login/start apiKey (waits for login completed)."""
        info: Message = await self.call("initialize", {"clientInfo": CLIENT_INFO})
        await self.notify("initialized")
        login = await self.call("account/login/start", {"type": "apiKey", "apiKey": api_key})
        assert login == {"type": "apiKey"}, login
        completed = await self.wait_for(lambda m: m.get("method") == "account/login/completed")
        assert completed["params"]["success"] is True, completed
        return info

    async def start_thread(self, cwd: Path, approval_policy: str = "never", sandbox: str = "workspace-write") -> str:
        result = await self.call(
            "thread/start", {"cwd": str(cwd), "approvalPolicy": approval_policy, "sandbox": sandbox}
        )
        thread_id: str = result["thread"]["id"]
        return thread_id

    async def run_turn(self, thread_id: str, text: str, timeout: float = 60) -> Message:
        """Start a turn and wait for its ``turn/completed`` notification."""
        mark = len(self.messages)
        result = await self.call(
            "turn/start", {"threadId": thread_id, "input": [{"type": "text", "text": text, "text_elements": []}]}
        )
        turn_id = result["turn"]["id"]

        def done(m: Message) -> bool:
            return m.get("method") == "turn/completed" and m["params"]["turn"]["id"] == turn_id

        return await self.wait_for(done, timeout, start=mark)


async def _stop(process: anyio.abc.Process) -> None:
    """Close stdin, then signal codex's process group until it is gone (bounded)."""
    with suppress(Exception):
        if process.stdin is not None:
            await process.stdin.aclose()
    for sig in (None, signal.SIGTERM, signal.SIGKILL):
        if sig is not None:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
        with anyio.move_on_after(5):
            await process.wait()
            return


@asynccontextmanager
async def codex_app_server(
    env: CodexEnv, extra_args: list[str] | None = None, app_server_args: list[str] | None = None
) -> AsyncIterator[CodexClient]:
    """The real codex app-server (native binary, own process group, fenced env).

    ``extra_args`` go before ``app-server``, ``app_server_args`` after it (``-c``
    works in both places; after wins).
    """
    require_fence()
    argv = [
        str(codex_native_binary()),
        *fence.CODEX_SAFE_ARGS,
        *(extra_args or []),
        "app-server",
        *(app_server_args or []),
    ]
    stderr_path = env.home / "codex-stderr.log"
    with stderr_path.open("ab") as stderr:
        process = await anyio.open_process(argv, env=env.env, cwd=env.workdir, stderr=stderr, start_new_session=True)
        client = CodexClient(process)
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.read_loop)
                try:
                    yield client
                finally:
                    await _stop(process)
                    tg.cancel_scope.cancel()
        finally:
            if process.returncode is None:
                with suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture
def spawn_codex() -> Callable[..., Any]:
    """``async with spawn_codex(codex_env, extra_args=[…]) as cx`` (see :func:`codex_app_server`)."""
    return codex_app_server
