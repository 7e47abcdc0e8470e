"""A host for ``capture-bridge serve``: spawn it and talk JSON-RPC as Tauri does.

Frames are read with the bridge's own :class:`FrameDecoder` (either framing);
notifications are collected in order so callers can check ``seq`` and wait
for a state. stderr goes to a file, so a chatty bridge can never block on a
full pipe and the log can be read afterwards. The drill, the CLI and the tests
all use this one client.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import Process

from bridge import runtime
from bridge.framing import Frame, FrameDecoder, Framing, encode

REPO = Path(__file__).resolve().parents[2]  # for PYTHONPATH when run from a checkout


class HostError(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(f"{error.get('code')}: {error.get('message')}")
        self.code: int = error.get("code", 0)
        self.message: str = error.get("message", "")
        self.data: dict[str, Any] = error.get("data") or {}


class Host:
    def __init__(self, process: Process, framing: Framing, stderr_path: Path, data_dir: Path) -> None:
        self.process = process
        self.framing: Framing = framing
        self.stderr_path = stderr_path
        self.data_dir = data_dir
        self.notifications: list[tuple[str, dict[str, Any]]] = []
        self.responses: dict[Any, dict[str, Any]] = {}
        self.batches: list[list[dict[str, Any]]] = []
        self.frames: list[Any] = []
        self._ids = itertools.count(1)
        self._changed = anyio.Event()
        self.eof = False

    @property
    def pid(self) -> int:
        return self.process.pid

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    async def send_raw(self, data: bytes) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send(data)

    async def send(self, message: Any) -> None:
        await self.send_raw(encode(json.dumps(message, allow_nan=False).encode(), self.framing))

    async def call(self, method: str, params: dict[str, Any] | None = None, timeout: float = 60.0) -> Any:
        msg_id = next(self._ids)
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": msg_id, "method": method}
        if params is not None:
            message["params"] = params
        await self.send(message)
        response = await self.wait_response(msg_id, timeout)
        if "error" in response:
            raise HostError(response["error"])
        return response["result"]

    async def wait_response(self, msg_id: Any, timeout: float = 60.0) -> dict[str, Any]:
        with anyio.fail_after(timeout):
            while msg_id not in self.responses:
                if self.eof:
                    raise EOFError(
                        f"bridge closed stdout before answering id {msg_id}; stderr:\n{self.stderr()[-3000:]}"
                    )
                await self._wait_change()
        return self.responses.pop(msg_id)

    async def wait_for(
        self,
        method: str,
        predicate: Callable[[dict[str, Any]], bool] = lambda p: True,
        timeout: float = 60.0,
        since: int = 0,
    ) -> dict[str, Any]:
        """The first notification ``method`` (at index >= since) whose params satisfy ``predicate``."""
        with anyio.fail_after(timeout):
            index = since
            while True:
                while index < len(self.notifications):
                    name, params = self.notifications[index]
                    index += 1
                    if name == method and predicate(params):
                        return params
                if self.eof:
                    raise EOFError(f"bridge closed stdout while waiting for {method}")
                await self._wait_change()

    async def _wait_change(self) -> None:
        await self._changed.wait()

    def _notify_change(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    def _accept(self, message: Any) -> None:
        self.frames.append(message)
        if isinstance(message, list):
            self.batches.append(message)
        elif "method" in message and "id" not in message:
            self.notifications.append((message["method"], message.get("params") or {}))
        else:
            self.responses[message.get("id")] = message
        self._notify_change()

    async def _read(self) -> None:
        assert self.process.stdout is not None
        decoder = FrameDecoder(1 << 30)
        try:
            async for chunk in self.process.stdout:
                for event in decoder.feed(chunk):
                    if isinstance(event, Frame):
                        self._accept(json.loads(event.body))
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass
        self.eof = True
        self._notify_change()

    async def close_stdin(self) -> None:
        if self.process.stdin is not None:
            await self.process.stdin.aclose()

    async def wait_exit(self, timeout: float) -> int:
        with anyio.fail_after(timeout):
            return await self.process.wait()


def bridge_argv(data_dir: Path, *extra: str, prelude: str | None = None) -> list[str]:
    """The serve command line; ``prelude`` is Python run first (tests use it to plant faults)."""
    serve = ["serve", "--data-dir", str(data_dir), *extra]
    if prelude is None:
        return runtime.bridge_argv(*serve)
    if runtime.frozen():
        raise RuntimeError("a prelude needs a Python interpreter; a frozen build cannot run one")
    code = f"{prelude}\nfrom bridge.cli import main\nraise SystemExit(main({serve!r}))"
    return [sys.executable, "-c", code]


def slow_start(delay_s: float) -> str:
    """A ``prelude`` that delays the subsystems' start by ``delay_s``: a slow machine, for tests.

    It wraps ``bridge.host.services.start`` from outside; the bridge itself has no such switch.
    """
    return (
        "import anyio, bridge.host.services as _services\n"
        "_original_start = _services.start\n"
        "async def _slow_start(app, tg):\n"
        f"    await anyio.sleep({float(delay_s)!r})\n"
        "    await _original_start(app, tg)\n"
        "_services.start = _slow_start\n"
    )


def bridge_env(tmp_path: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a bridge whose ``$HOME`` is ``tmp_path/home`` (its own collector roots)."""
    merged = dict(os.environ)
    home = tmp_path / "home"
    home.mkdir(parents=True, exist_ok=True)
    merged["HOME"] = str(home)
    if not runtime.frozen():  # a checkout's bridge finds its package; a frozen one carries it
        merged["PYTHONPATH"] = str(REPO) + os.pathsep + merged.get("PYTHONPATH", "")
    merged.setdefault("CAPTURE_BRIDGE_LOG_LEVEL", "INFO")
    merged.update(env or {})
    return merged


@asynccontextmanager
async def spawn_bridge(
    tmp_path: Path,
    *,
    config: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    args: tuple[str, ...] = (),
    framing: Framing = "jsonl",
    data_dir: Path | None = None,
    stop_timeout: float = 9.0,
    prelude: str | None = None,
) -> AsyncIterator[Host]:
    """Spawn ``capture-bridge serve`` on a data dir under ``tmp_path``; stop it at the end.

    ``tmp_path`` holds the data dir (unless given), the stderr log and the
    bridge's ``$HOME``.
    """
    data_dir = data_dir or tmp_path / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    if config is not None or not (data_dir / "config.json").exists():
        # An ephemeral receiver port unless the caller names one, so bridges never collide.
        from bridge.config.store import deep_merge

        merged = deep_merge({"otlpReceiver": {"port": 0}}, config or {})
        (data_dir / "config.json").write_text(json.dumps(merged))
    stderr_path = tmp_path / f"bridge-stderr-{len(list(tmp_path.glob('bridge-stderr-*')))}.log"
    with stderr_path.open("wb") as err:
        process = await anyio.open_process(
            bridge_argv(data_dir, *args, prelude=prelude),
            stdin=-1,
            stdout=-1,
            stderr=err,
            env=bridge_env(tmp_path, env),
            cwd=None if runtime.frozen() else REPO,
        )
    host = Host(process, framing, stderr_path, data_dir)
    async with anyio.create_task_group() as tg:
        tg.start_soon(host._read)
        try:
            yield host
        finally:
            with anyio.CancelScope(shield=True):
                if process.returncode is None:
                    with suppress(Exception):
                        await host.close_stdin()
                    with anyio.move_on_after(stop_timeout):
                        await process.wait()
                    if process.returncode is None:
                        process.kill()
                        await process.wait()
            tg.cancel_scope.cancel()
