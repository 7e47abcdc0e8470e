"""Helpers for the sidecar tests: a supervisor harness, the fake sidecar, process-tree checks."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest

from bridge.config.store import ConfigStore
from bridge.peers import fence
from bridge.sidecar.events import SidecarState
from bridge.sidecar.generation import SupervisorOptions
from bridge.sidecar.supervisor import Supervisor

FAKE_SIDECAR = Path(__file__).resolve().parents[1] / "fakes" / "fake_sidecar.py"
MARK = "CAPTURE_BRIDGE_TEST_MARK"
API_KEY = "sk-test-sidecar-0123456789abcdef"


def require_fence() -> None:
    """Fail (never skip) when a real codex could reach anything but loopback."""
    if not fence.isolated():
        pytest.fail(
            "not inside the loopback-only fence: run real-peer tests as "
            "`.venv/bin/python -m bridge.peers.fence -- .venv/bin/pytest tests/sidecar` "
            f"(interfaces up: {fence.up_interfaces()})"
        )


def fake_config(mode: str, **extra: Any) -> dict[str, Any]:
    """Config that makes the supervisor run the FAKE sidecar in ``mode``."""
    config: dict[str, Any] = {"codex": {"binaryPath": sys.executable, "args": [str(FAKE_SIDECAR), mode]}}
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key].update(value)
        else:
            config[key] = value
    return config


def real_codex_config(**extra: Any) -> dict[str, Any]:
    from bridge.peers.install import codex_native_binary

    config: dict[str, Any] = {"codex": {"binaryPath": str(codex_native_binary()), "args": list(fence.CODEX_SAFE_ARGS)}}
    config.update(extra)
    return config


def marked_env(tmp_path: Path, *, real_peer: bool = False) -> dict[str, str]:
    """Environment for a sidecar, tagged so the process-tree check can find its processes."""
    base = fence.peer_env(dict(os.environ), tmp_path / "home") if real_peer else dict(os.environ)
    base[MARK] = str(tmp_path)
    return base


# --- the process tree --------------------------------------------------------------


@dataclass(frozen=True)
class ProcInfo:
    pid: int
    ppid: int
    state: str
    cmdline: str


def _read_proc(pid: int) -> ProcInfo | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    rest = stat[stat.rfind(")") + 2 :].split()
    return ProcInfo(pid, int(rest[1]), rest[0], cmdline.strip())


def _environ_has(pid: int, needle: bytes) -> bool:
    try:
        return needle in Path(f"/proc/{pid}/environ").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False


def all_processes() -> list[ProcInfo]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            info = _read_proc(int(entry.name))
            if info is not None:
                out.append(info)
    return out


DECODER_MODULE = "bridge.receiver.decoder_main"


def leftovers(tmp_path: Path, root_pid: int | None = None, needles: tuple[str, ...] = ()) -> list[ProcInfo]:
    """Processes that belong to this test, zombies included.

    That is: descendants of ``root_pid`` (a bridge the test spawned, apart from its own
    decoder process; other tests of this session may have children of their own), any process whose environment
    carries this test's mark, and any process whose command line contains one of
    ``needles`` and whose environment points into ``tmp_path`` (its HOME or
    CODEX_HOME). Other sessions' codex processes on a shared machine never match.
    """
    me = os.getpid()
    root = root_pid or me
    procs = all_processes()
    children: dict[int, list[ProcInfo]] = {}
    for p in procs:
        children.setdefault(p.ppid, []).append(p)
    # The running bridge's own OTLP decoder process is part of the bridge, not left behind.
    own = {p.pid for p in procs if root_pid and p.ppid == root_pid and DECODER_MODULE in p.cmdline}
    found: dict[int, ProcInfo] = {}
    stack = [root_pid] if root_pid else []
    while stack:
        for child in children.get(stack.pop(), []):
            if child.pid not in found and child.pid not in own:
                found[child.pid] = child
                stack.append(child.pid)
    mark = f"{MARK}={tmp_path}\0".encode()
    ours = f"={tmp_path}/".encode()
    for p in procs:
        if p.pid in (me, root) or p.pid in found or p.pid in own:
            continue
        if _environ_has(p.pid, mark) or (any(n in p.cmdline for n in needles) and _environ_has(p.pid, ours)):
            found[p.pid] = p
    return sorted(found.values(), key=lambda p: p.pid)


async def assert_no_leftovers(tmp_path: Path, root_pid: int | None = None, needles: tuple[str, ...] = ()) -> None:
    """No process of this test is left, zombies included (a reaper gets a moment to act)."""
    remaining: list[ProcInfo] = []
    with anyio.move_on_after(3.0):
        while True:
            remaining = leftovers(tmp_path, root_pid, needles)
            if not remaining:
                return
            await anyio.sleep(0.05)
    raise AssertionError(f"processes left behind: {remaining}")


def pid_alive(pid: int) -> bool:
    info = _read_proc(pid)
    return info is not None and info.state != "Z"


# --- the supervisor harness ------------------------------------------------------------


@dataclass
class Harness:
    sup: Supervisor
    config: ConfigStore
    pushed: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    _changed: anyio.Event = field(default_factory=anyio.Event)

    def record(self, method: str, params: dict[str, Any]) -> None:
        self.pushed.append((method, params))
        self._changed.set()
        self._changed = anyio.Event()

    def statuses(self) -> list[dict[str, Any]]:
        return [p for m, p in self.pushed if m == "codex-app-server-status"]

    async def wait_status(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 30.0, since: int = 0
    ) -> dict[str, Any]:
        """The first pushed status (from index ``since``) that satisfies ``predicate``."""
        index = since
        with anyio.fail_after(timeout):
            while True:
                statuses = self.statuses()
                while index < len(statuses):
                    if predicate(statuses[index]):
                        return statuses[index]
                    index += 1
                await self._changed.wait()


@asynccontextmanager
async def supervisor(
    tmp_path: Path,
    config: dict[str, Any],
    *,
    environ: dict[str, str] | None = None,
    **options: Any,
) -> AsyncIterator[Harness]:
    """A running :class:`Supervisor` on a config file under ``tmp_path``; closed at the end."""
    store = ConfigStore(tmp_path / "config.json")
    if config:
        store.update(config)
    harness_ref: list[Harness] = []

    def on_state(state: SidecarState) -> None:
        harness_ref[0].record("codex-app-server-status", msgspec.to_builtins(state.status))

    opts = SupervisorOptions(environ=environ if environ is not None else marked_env(tmp_path), **options)
    sup = Supervisor(store, opts)
    sup.hub.add_state_listener(on_state)
    harness = Harness(sup, store)
    harness_ref.append(harness)
    async with anyio.create_task_group() as tg:
        await tg.start(sup.run)
        try:
            yield harness
        finally:
            await sup.aclose()
            tg.cancel_scope.cancel()
