"""What every scenario shares: rows, sizes, and the real bridge driven through real pipes.

:class:`Bridge` spawns ``capture-bridge serve`` the way the desktop host does
(stdin/stdout pipes, newline-delimited JSON-RPC) and reads its stdout on a
thread of its own that stamps every line with ``time.monotonic_ns()`` the
moment ``read()`` returns it. ``session:live:event`` lines are only counted
(those of the codex stream apart; with ``track_live`` their read times kept); every other line that is
not a notification is an answer, handed to whoever waits for its id.
CLOCK_MONOTONIC is system wide on Linux, so the write times the codex
stand-in saves (``--stamps``) and the read times taken here can be
subtracted: the n-th frame written against the n-th live event read.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import re
import shlex
import signal
import statistics
import subprocess
import sys
import threading
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"

NOTE = b'{"jsonrpc":"2.0","method":'
LIVE = b'{"jsonrpc":"2.0","method":"session:live:event"'
FROM_STREAM = b'"source":"app_server_stream"'
ANSWER_ID = re.compile(rb'\{(?:"jsonrpc":"2\.0",)?"id":(\d+)[,}]')


class BenchError(Exception):
    """A scenario could not measure what it meant to (the row is reported as failed)."""


@dataclass
class Row:
    """One line of the table; ``passed`` is None for a reference or a reported-only value."""

    metric: str
    value: float | None
    unit: str
    target: str | None = None
    passed: bool | None = None
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "metric": self.metric,
            "value": self.value,
            "unit": self.unit,
            "target": self.target,
            "pass": self.passed,
        }
        if self.note:
            out["note"] = self.note
        return out


@dataclass(frozen=True)
class Sizes:
    """How big each scenario runs; ``full`` is what the targets are about."""

    spawns: int = 10  # first answer and ready: spawns of each kind
    stream_frames: int = 200_000  # stream end to end (and the bare loop over the same frames)
    stream_rounds: int = 3  # the stream and the bare loop, one after the other, this often: the median round counts
    lag_seconds: float = 10.0  # the 1,000 frames/s stream
    latency_seconds: float = 10.0  # the 10,000 frames/s stream, commands every probe_interval
    probe_interval: float = 0.02
    memory_frames: int = 1_000_000
    idle_seconds: float = 10.0
    otlp_seconds: float = 10.0
    hydration_items: int = 10_000


PRESETS: dict[str, Sizes] = {
    "full": Sizes(),
    "quick": Sizes(spawns=3, stream_frames=50_000, lag_seconds=3, latency_seconds=3, memory_frames=200_000,
                   idle_seconds=3, otlp_seconds=3, hydration_items=2_000),
    # the smoke test: every scenario runs and reports its rows; the values mean nothing
    "tiny": Sizes(spawns=1, stream_frames=2_000, stream_rounds=1, lag_seconds=0.5, latency_seconds=0.5,
                  probe_interval=0.05, memory_frames=4_000, idle_seconds=0.5, otlp_seconds=0.5, hydration_items=200),
}  # fmt: skip


@dataclass
class Context:
    sizes: Sizes
    preset: str
    workdir: Path
    profile_dir: Path | None = None
    _counter: Any = field(default_factory=lambda: itertools.count(1))

    def fresh_dir(self, name: str) -> Path:
        path = self.workdir / f"{next(self._counter):02d}-{name}"
        path.mkdir(parents=True)
        return path

    def log(self, message: str) -> None:
        print(f"[bench] {message}", file=sys.stderr, flush=True)


def size_overrides(text: str) -> dict[str, Any]:
    """``name=value,…`` over a preset (``--set memory_frames=300000``)."""
    known = {f.name: f.type for f in fields(Sizes)}
    out: dict[str, Any] = {}
    for part in filter(None, text.split(",")):
        name, _, value = part.partition("=")
        if name not in known:
            raise SystemExit(f"--set: unknown size {name!r}; one of {', '.join(known)}")
        out[name] = float(value) if known[name] == "float" else int(value)
    return out


# --- numbers -------------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """The nearest-rank percentile (p in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def ms(ns: float) -> float:
    return ns / 1e6


def le(value: float, limit: float) -> bool:
    return not math.isnan(value) and value <= limit


def ge(value: float, limit: float) -> bool:
    return not math.isnan(value) and value >= limit


# --- /proc ---------------------------------------------------------------------------------


def proc_status_kib(pid: int, field_name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise BenchError(f"/proc/{pid}/status has no {field_name}")


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    after = stat[stat.rindex(")") + 2 :].split()
    return (int(after[11]) + int(after[12])) / os.sysconf("SC_CLK_TCK")


def proc_children(pid: int) -> list[int]:
    """The live children of a process: every process whose parent it is (``/proc/*/stat``, field 4)."""
    out: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
            out.append(int(entry.name))
    return out


def proc_cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


# --- spawning ------------------------------------------------------------------------------


def bridge_env(workdir: Path) -> dict[str, str]:
    """The environment of a bridge: its own ``$HOME`` (collector roots), the checkout on the path."""
    home = workdir / "home"
    home.mkdir(exist_ok=True)
    env = dict(os.environ)
    env["HOME"] = str(home)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def write_config(data_dir: Path, config: dict[str, Any]) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    merged: dict[str, Any] = {"otlpReceiver": {"port": 0}}
    for key, value in config.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    (data_dir / "config.json").write_text(json.dumps(merged))


def compile_bytecode() -> int:
    """Compile the checkout's ``bridge`` package to bytecode, as pip does when it installs the package.

    An editable checkout gets its ``__pycache__`` only from the imports that run, and none
    at all under ``PYTHONDONTWRITEBYTECODE=1`` (set on the project's machines): every spawn
    would then compile ~23,000 lines before it could answer (~100 ms of CPU on the 2-core
    machine), which neither an installed bridge nor the frozen build pays, nor the
    references (their site-packages are compiled). Returns the number of modules.
    """
    import compileall

    package = ROOT / "bridge"
    compileall.compile_dir(str(package), quiet=1)
    return sum(1 for _ in package.rglob("*.py"))


def serve_argv(data_dir: Path) -> list[str]:
    return [sys.executable, "-m", "bridge", "serve", "--data-dir", str(data_dir)]


def time_to_answer(argv: list[str], request: bytes, env: dict[str, str]) -> float:
    """Milliseconds from spawning ``argv`` to reading its answer (a line with ``"id":1``) to ``request``."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            cwd=ROOT, env=env)  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(request)
        proc.stdin.flush()
        while True:
            line = proc.stdout.readline()
            if not line:
                raise BenchError(f"{argv[:4]} closed stdout before answering (exit {proc.poll()})")
            if not line.startswith(NOTE) and (b'"id":1,' in line or b'"id":1}' in line):
                return (time.perf_counter() - started) * 1000
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def standin_config(workdir: Path, **options: Any) -> dict[str, Any]:
    """Config that puts the codex stand-in (benchmarks/codex_standin.py) in codex's place."""
    args = []
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            args.append(flag)
        elif value not in (None, False):
            args += [flag, str(value)]
    script = workdir / "codex-standin"
    command = shlex.join([sys.executable, str(BENCH / "codex_standin.py"), *args])
    script.write_text(f'#!/bin/sh\nexec {command} "$@"\n')
    script.chmod(0o755)
    return {"appServerAuthMode": "apikey", "autoIngestEnabled": True, "codex": {"binaryPath": str(script)}}


class Bridge:
    """``capture-bridge serve`` on a fresh data dir under ``workdir``, spoken to over its pipes."""

    def __init__(
        self, ctx: Context, workdir: Path, config: dict[str, Any], profile: str | None = None, track_live: bool = False
    ) -> None:
        self.ctx = ctx
        self.workdir = workdir
        self.data_dir = workdir / "data"
        write_config(self.data_dir, config)
        self._stderr = (workdir / "bridge-stderr.log").open("wb")
        self.proc = subprocess.Popen(serve_argv(self.data_dir), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._stderr, cwd=ROOT, env=bridge_env(workdir), bufsize=0)  # fmt: skip
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._in = self.proc.stdin.fileno()
        self._write_lock = threading.Lock()
        self._cond = threading.Condition()
        self._ids = itertools.count(1)
        self._sent: dict[int, int] = {}
        self._answers: dict[Any, tuple[int, bytes]] = {}  # parsed by the waiter, not the reader
        self.live = 0  # session:live:event lines of the codex stream read
        self.other_live = 0  # other live events (e.g. OTLP records captured by the receiver)
        self.track_live = track_live
        self.live_times: list[int] = []  # read time (ns) of each live event, with track_live
        self.first_live_ns: int | None = None
        self.last_live_ns: int | None = None
        self.eof = False
        self._reader = threading.Thread(target=self._read, name="bench-host-reader", daemon=True)
        self._reader.start()
        self._profiler: subprocess.Popen[bytes] | None = None
        self._profile = profile if ctx.profile_dir is not None else None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stderr_tail(self) -> str:
        self._stderr.flush()
        return (self.workdir / "bridge-stderr.log").read_text(errors="replace")[-2000:]

    # reading -------------------------------------------------------------------------------

    def _read(self) -> None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        pieces: list[bytes] = []  # an unfinished line, as read (joined once it ends: O(n) for a long line)
        times = self.live_times if self.track_live else None
        while True:
            chunk = os.read(fd, 1 << 20)
            now = time.monotonic_ns()
            if not chunk:
                break
            cut = chunk.rfind(b"\n")  # only the new bytes are searched
            if cut < 0:
                pieces.append(chunk)
                continue
            if pieces:
                pieces.append(chunk[:cut])
                complete = b"".join(pieces)
                pieces.clear()
            else:
                complete = chunk[:cut]
            if cut + 1 < len(chunk):
                pieces.append(chunk[cut + 1 :])
            answers: list[tuple[Any, bytes]] = []
            live = other = 0
            lines = complete.count(b"\n") + 1
            notes = complete.count(b"\n" + NOTE) + complete.startswith(NOTE)
            if times is None and notes == lines:
                # Only notifications (the bulk of a stream): counted by byte scans, not line by line, so
                # the measuring side takes as little of the machine's two cores as it can.
                total = complete.count(b"\n" + LIVE) + complete.startswith(LIVE)
                live = complete.count(FROM_STREAM)
                other = total - live
                lines = 0  # nothing left to look at
            for line in complete.split(b"\n") if lines else ():
                if line.startswith(LIVE):
                    if FROM_STREAM not in line:
                        other += 1
                        continue
                    live += 1
                    if times is not None:
                        times.append(now)
                elif line.startswith(NOTE) or not line.strip():
                    continue
                else:
                    found = ANSWER_ID.match(line)
                    answers.append((int(found[1]) if found else json.loads(line).get("id"), line))
            if live:
                if self.first_live_ns is None:
                    self.first_live_ns = now
                self.last_live_ns = now
            with self._cond:
                self.live += live
                self.other_live += other
                for mid, line in answers:
                    self._answers[mid] = (now, line)
                self._cond.notify_all()
        with self._cond:
            self.eof = True
            self._cond.notify_all()

    def wait_until(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                left = deadline - time.monotonic()
                if self.eof:
                    raise BenchError(f"the bridge closed stdout while waiting for {what}: {self.stderr_tail()}")
                if left <= 0:
                    raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}")
                self._cond.wait(min(left, 1.0))

    def wait_live(self, count: int, timeout: float) -> None:
        self.wait_until(lambda: self.live >= count, timeout, f"{count} live events (have {self.live})")

    # asking --------------------------------------------------------------------------------

    def send(self, message: dict[str, Any]) -> None:
        data = json.dumps(message).encode() + b"\n"
        with self._write_lock:
            os.write(self._in, data)

    def request(self, method: str, params: dict[str, Any] | None = None) -> int:
        """Send a request; :meth:`answer` waits for it. The send time is taken right before the write."""
        mid = next(self._ids)
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": mid, "method": method}
        if params is not None:
            message["params"] = params
        data = json.dumps(message).encode() + b"\n"
        with self._write_lock:
            self._sent[mid] = time.monotonic_ns()
            os.write(self._in, data)
        return mid

    def answer(self, mid: int, timeout: float = 60.0) -> tuple[Any, int]:
        """(result, latency in ns) of request ``mid``; an error answer raises :class:`BenchError`."""
        self.wait_until(lambda: mid in self._answers, timeout, f"the answer to request {mid}")
        with self._cond:
            read_at, line = self._answers.pop(mid)
        message = json.loads(line)
        if "error" in message:
            raise BenchError(f"request {mid} failed: {message['error']}")
        return message.get("result"), read_at - self._sent.pop(mid)

    def lags(self, stamps_file: Path, timeout: float = 30.0) -> list[tuple[int, float]]:
        """(written at ns, lag ms) per frame: the stand-in's write times against the live events' read times."""
        deadline = time.monotonic() + timeout
        while not stamps_file.exists():
            if time.monotonic() > deadline:
                raise BenchError(f"the codex stand-in never saved {stamps_file.name}")
            time.sleep(0.05)
        written = array("q", stamps_file.read_bytes())
        read = self.live_times
        if len(read) != len(written):
            raise BenchError(f"{len(written)} frames written but {len(read)} live events read: cannot pair them")
        return [(w, (r - w) / 1e6) for w, r in zip(written, read, strict=True)]

    def answered(self, mid: int) -> bool:
        return mid in self._answers

    def call(self, method: str, params: dict[str, Any] | None = None, timeout: float = 60.0) -> Any:
        return self.answer(self.request(method, params), timeout)[0]

    def start_sidecar(self) -> None:
        """start → initialize → initialized: the stand-in is running and its API-key login confirmed.

        With ``--profile``, py-spy attaches here: scenarios measure right after this.
        """
        self.call("start_codex_app_server")
        self.call("codex_app_server_initialize")
        self.call("codex_app_server_initialized")
        if self._profile:  # profile what is measured, not the start-up
            self.start_profile(self._profile)

    # profiling -----------------------------------------------------------------------------

    def start_profile(self, name: str) -> None:
        """py-spy on the bridge (``--profile DIR``): collapsed stacks in DIR/<name>.txt."""
        assert self.ctx.profile_dir is not None
        self.ctx.profile_dir.mkdir(parents=True, exist_ok=True)
        out = self.ctx.profile_dir / f"{name}.txt"
        spy = Path(sys.executable).with_name("py-spy")
        argv = [str(spy), "record", "--pid", str(self.pid), "--rate", "250", "--format", "raw", "--threads",
                "--nonblocking", "--output", str(out)]  # fmt: skip
        self._profiler = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)  # attach before the measured part starts

    def stop_profile(self) -> None:
        if self._profiler is not None:
            self._profiler.send_signal(signal.SIGINT)
            try:
                self._profiler.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._profiler.kill()
            self._profiler = None

    # ending --------------------------------------------------------------------------------

    def close(self) -> None:
        self.stop_profile()
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=5)
        self._stderr.close()

    def __enter__(self) -> Bridge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def lags_ms(lags: Sequence[tuple[int, float]], since: int = 0, until: int | None = None) -> list[float]:
    """The lags (ms) of the frames written within [since, until] (CLOCK_MONOTONIC ns)."""
    return [lag for sent, lag in lags if sent >= since and (until is None or sent <= until)]


def stream_rate(bridge: Bridge, frames: int) -> float:
    """Frames per second as the host read their events (first to last)."""
    if bridge.first_live_ns is None or bridge.last_live_ns is None or bridge.last_live_ns <= bridge.first_live_ns:
        return math.nan
    return (frames - 1) / ((bridge.last_live_ns - bridge.first_live_ns) / 1e9)
