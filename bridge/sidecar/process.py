"""Spawning ``codex app-server`` in its own process group and stopping it for good.

The process is started with ``start_new_session=True`` so that it leads a new
process group: signals go to the group, which also reaches a child the
program started (the npm launcher's native codex, docs/peers.md §1). Stopping
is bounded: close stdin → wait → SIGTERM to the group → wait → SIGKILL →
reap. Stderr is kept in a small ring of redacted lines for diagnostics.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path

import anyio
import msgspec
from anyio.abc import ByteReceiveStream, Process

from bridge import errors
from bridge.errors import BridgeError
from bridge.redact import redact_text
from bridge.sidecar.pipe import PipeReader, stdout_pipe

ENV_CODEX_BIN = "CAPTURE_BRIDGE_CODEX_BIN"
STDERR_LINES = 200
STDERR_LINE_CHARS = 2000


class StderrRing:
    """The newest stderr lines of the sidecar, redacted, bounded in count and length."""

    def __init__(self, max_lines: int = STDERR_LINES, max_line_chars: int = STDERR_LINE_CHARS) -> None:
        self._lines: deque[str] = deque(maxlen=max_lines)
        self._max_chars = max_line_chars
        self._partial = b""
        self.dropped = 0  # lines pushed out of the ring (or cut down) since the start
        self.total = 0

    @property
    def buffered(self) -> int:
        return len(self._lines)

    def feed(self, chunk: bytes) -> None:
        data = self._partial + chunk
        *lines, rest = data.split(b"\n")
        if len(rest) > self._max_chars * 4:  # a runaway line: keep its head only
            lines.append(rest)
            rest = b""
        self._partial = rest
        for line in lines:
            self._add(line)

    def flush(self) -> None:
        if self._partial:
            self._add(self._partial)
            self._partial = b""

    def _add(self, raw: bytes) -> None:
        text = raw.decode("utf-8", "replace").rstrip("\r")
        if not text.strip():
            return
        text = _strip_ansi(text)
        if len(text) > self._max_chars:
            text = text[: self._max_chars] + "…"
        if len(self._lines) == self._lines.maxlen:
            self.dropped += 1
        self._lines.append(redact_text(text))
        self.total += 1

    def tail(self, count: int = 20) -> list[str]:
        return list(self._lines)[-count:]


def _strip_ansi(text: str) -> str:
    if "\x1b[" not in text:
        return text
    import re

    return re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)


def resolve_binary(configured: str | None, environ: Mapping[str, str]) -> str:
    """Config ``codex.binaryPath``, else ``$CAPTURE_BRIDGE_CODEX_BIN``, else ``codex`` on PATH.

    Raises -32015 naming the path when it is missing or not executable.
    """
    candidate = configured or environ.get(ENV_CODEX_BIN) or None
    source = "codex.binaryPath" if configured else ENV_CODEX_BIN if candidate else "PATH"
    if candidate is None:
        found = shutil.which("codex", path=environ.get("PATH"))
        if found is None:
            raise BridgeError(
                errors.SIDECAR_SPAWN_FAILED,
                "No codex binary found: 'codex' is not on PATH. Set codex.binaryPath (or "
                f"{ENV_CODEX_BIN}) to the codex executable.",
                path="codex",
            )
        return found
    path = Path(candidate).expanduser()
    if not path.exists():
        raise BridgeError(
            errors.SIDECAR_SPAWN_FAILED,
            f"The codex binary {path} (from {source}) does not exist; check the path and that codex is installed.",
            path=str(path),
        )
    if path.is_dir() or not os.access(path, os.X_OK):
        raise BridgeError(
            errors.SIDECAR_SPAWN_FAILED,
            f"The codex binary {path} (from {source}) is not executable; check its permissions (chmod +x).",
            path=str(path),
        )
    return str(path)


class SpawnSpec(msgspec.Struct, frozen=True):
    """Everything needed to start one sidecar process."""

    binary: str
    args: tuple[str, ...]
    env: Mapping[str, str]

    @property
    def argv(self) -> list[str]:
        # `-c key=value` overrides are global codex options: `codex -c k=v app-server`.
        return [self.binary, *self.args, "app-server"]


def build_spec(
    binary: str,
    args: Sequence[str],
    extra_env: Mapping[str, str],
    codex_home: str | None,
    environ: Mapping[str, str],
) -> SpawnSpec:
    env = dict(environ)
    env.update(extra_env)
    if codex_home:
        env["CODEX_HOME"] = str(Path(codex_home).expanduser())
    return SpawnSpec(binary, tuple(args), env)


class SidecarProcess:
    """One running codex app-server process (the leader of its own process group)."""

    def __init__(self, process: Process, spec: SpawnSpec, stdout: ByteReceiveStream) -> None:
        self.process = process
        self.spec = spec
        self.stdout = stdout  # codex's frames (bridge.sidecar.pipe: read straight from the pipe)
        self.pid = process.pid
        self.pgid = process.pid
        self.stderr = StderrRing()
        self.started_at = anyio.current_time()

    @classmethod
    async def spawn(cls, spec: SpawnSpec) -> SidecarProcess:
        # POSIX: codex writes into a pipe the bridge made and reads itself (bridge.sidecar.pipe). Elsewhere
        # (Windows: no non-blocking pipes to wait on) anyio's subprocess stream, as before.
        read_fd, write_fd = stdout_pipe() if os.name == "posix" else (-1, -1)
        try:
            process = await anyio.open_process(
                spec.argv,
                stdin=subprocess.PIPE,
                stdout=write_fd if write_fd >= 0 else subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=dict(spec.env),
                start_new_session=True,
            )
        except OSError as exc:
            if read_fd >= 0:
                os.close(read_fd)
            raise BridgeError(
                errors.SIDECAR_SPAWN_FAILED,
                f"Could not start the codex binary {spec.binary}: {exc.strerror or exc}. "
                "Check the binary's presence and permissions.",
                path=spec.binary,
            ) from exc
        finally:
            if write_fd >= 0:
                os.close(write_fd)  # the child holds its copy: codex's exit is then the reader's end of stream
        if read_fd >= 0:
            return cls(process, spec, PipeReader(read_fd))
        assert process.stdout is not None
        return cls(process, spec, process.stdout)

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    async def pump_stderr(self) -> None:
        """Copy stderr into the ring until it closes."""
        stream: ByteReceiveStream | None = self.process.stderr
        if stream is None:
            return
        try:
            async for chunk in stream:
                self.stderr.feed(chunk)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            pass
        finally:
            self.stderr.flush()

    async def wait(self) -> int:
        return await self.process.wait()

    def signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pgid, signum)

    async def stop(self, *, eof_grace: float = 1.0, term_grace: float = 0.5, kill_grace: float = 1.0) -> int | None:
        """Stop the whole group, bounded by the three graces; returns the exit code.

        Whatever the leader does, its group is sent SIGKILL at the end so that no
        child it left behind survives it.
        """
        with anyio.CancelScope(shield=True):
            stdin = self.process.stdin
            if stdin is not None:
                with contextlib.suppress(OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
                    await stdin.aclose()
            code = await self._wait_for(eof_grace)
            if code is None:
                self.signal_group(signal.SIGTERM)
                code = await self._wait_for(term_grace)
            self.signal_group(signal.SIGKILL)
            if code is None:
                code = await self._wait_for(kill_grace)
            await self._close_pipes()
        return code

    async def _wait_for(self, seconds: float) -> int | None:
        code: int | None = None
        with anyio.move_on_after(seconds):
            code = await self.process.wait()
        return code if code is not None else self.process.returncode

    async def _close_pipes(self) -> None:
        for stream in (self.stdout, self.process.stderr):
            if stream is not None:
                with contextlib.suppress(OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
                    await stream.aclose()
