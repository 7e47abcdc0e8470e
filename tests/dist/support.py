"""Running the frozen executable as the Tauri host does: a clean environment, no Python anywhere."""

from __future__ import annotations

import json
import os
import select
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bridge import __version__
from bridge.framing import Frame, FrameDecoder, Framing, encode
from bridge.runtime import target_triple

REPO = Path(__file__).resolve().parents[2]
TRIPLE = target_triple()
FOLDER = REPO / "dist" / f"capture-bridge-{__version__}-{TRIPLE}"


@dataclass(frozen=True)
class Frozen:
    folder: Path
    entry: Path
    manifest: dict[str, Any]


def load_frozen() -> Frozen:
    manifest = json.loads((FOLDER / "manifest.json").read_text())
    return Frozen(FOLDER, FOLDER / manifest["entry"], manifest)


def clean_env(home: Path, tmpdir: Path, **extra: str) -> dict[str, str]:
    """What a desktop app passes: no venv on PATH, no PYTHONPATH/PYTHONHOME, its own HOME and TMPDIR."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "TMPDIR": str(tmpdir), "LANG": "C.UTF-8"}
    env.update(extra)
    home.mkdir(parents=True, exist_ok=True)
    return env


def entry_processes(entry: Path) -> set[int]:
    """Pids whose executable is ``entry`` (read from /proc)."""
    found = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if os.readlink(proc / "exe") == str(entry):
                found.add(int(proc.name))
        except OSError:
            continue
    return found


def processes_with_env(name: str, value: str) -> set[int]:
    """Pids whose environment has ``name=value``: everything a frozen process started inherits it."""
    needle = f"{name}={value}".encode()
    found = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if needle in (proc / "environ").read_bytes().split(b"\0"):
                found.add(int(proc.name))
        except OSError:
            continue
    return found


class Bridge:
    """A frozen ``serve`` spoken to over pipes, synchronously (the tests' host)."""

    def __init__(self, frozen: Frozen, tmp: Path, tmpdir: Path, *args: str, framing: Framing = "jsonl") -> None:
        self.data_dir = tmp / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "config.json").write_text(json.dumps({"otlpReceiver": {"port": 0}}))
        self.stderr_path = tmp / "frozen-stderr.log"
        self.framing: Framing = framing
        self.proc = subprocess.Popen(
            [str(frozen.entry), "serve", "--data-dir", str(self.data_dir), *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr_path.open("wb"),
            env=clean_env(tmp / "home", tmpdir), cwd=tmp,
        )  # fmt: skip
        self.decoder = FrameDecoder(1 << 30)
        self.messages: list[dict[str, Any]] = []
        self.next_id = 0

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(encode(json.dumps(message).encode(), self.framing))
        self.proc.stdin.flush()

    def request(self, method: str, params: dict[str, Any] | None = None, timeout: float = 30.0) -> dict[str, Any]:
        """Send a request and return its whole answer (``result`` or ``error``)."""
        self.next_id += 1
        mid = self.next_id
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": mid, "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)
        return self.wait_for(lambda m: m.get("id") == mid and "method" not in m, timeout)

    def wait_for(self, match: Any, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for message in self.messages:
                if match(message):
                    return message
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no matching message within {timeout} s; stderr:\n{self.stderr()}")
            if not self._read(remaining):
                raise EOFError(f"the bridge closed stdout; stderr:\n{self.stderr()}")

    def _read(self, timeout: float) -> bool:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            return True
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return False
        for event in self.decoder.feed(chunk):
            if isinstance(event, Frame):
                decoded = json.loads(event.body)
                self.messages.extend(decoded if isinstance(decoded, list) else [decoded])
        return True

    def notifications(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if "method" in m and "id" not in m]

    def drain(self, timeout: float) -> None:
        """Read until stdout closes (the process is exiting), at most ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._read(deadline - time.monotonic()):
            pass

    def wait_exit(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
