"""Replaying a transcript through a real bridge, deterministically.

Design: a real ``capture-bridge serve`` (fresh data dir, receiver on an
ephemeral loopback port) is spawned with ``codex.binaryPath`` pointing at the
replay player (:mod:`bridge.transcript.player`), which plays the codex side
of the transcript. This module is the host: by default it issues the host
commands derived from the codex side (:func:`bridge.transcript.script.host_plan`),
each at the moment the player waits for the frame that command makes the
bridge send; with ``host=True`` it re-sends the recorded host requests
instead, each once the player has played what codex had said before it, and
compares every answer with the recorded one.

When the player has played everything, the bridge is shut down (it commits
what it captured) and the result is read from its store: the captured threads,
the dedup decisions (oldest first) and the capture-mode timeline. Everything
that depends on the wall clock, the pid or the temp dir (capture times,
transition times, tokens) is left out, so the same transcript always gives
the same bytes.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import msgspec

from bridge.client.host import Host, HostError, spawn_bridge
from bridge.transcript.compare import first_difference, normalise
from bridge.transcript.format import Line, parse_lines
from bridge.transcript.player import ENV_GATE, ENV_REALTIME, ENV_STATE, ENV_TRANSCRIPT, write_launcher
from bridge.transcript.script import (
    Exchange,
    HostStep,
    baseline_enabled,
    conn_scripts,
    host_exchanges,
    host_plan,
    required_auth_mode,
)

LIVE = "session:live:event"
STALL_TIMEOUT_S = 15.0  # the player made no progress for this long: the replay is stuck
SETTLE_TIMEOUT_S = 3.0  # how long a --host request waits for the live events recorded before it
OPTIONAL_GRACE_S = 0.3  # how long an optional step waits for the bridge to act by itself

def load(path: Path) -> list[Line]:
    with path.open("rb") as fh:
        return list(parse_lines(fh, str(path)))


@dataclass
class Progress:
    """What the player reported (its ``progress`` file), followed by polling."""

    path: Path
    at: int = 0
    conn: int = 0
    waiting: str | None = None
    _offset: int = 0
    _buffer: bytes = b""

    def poll(self) -> None:
        try:
            with self.path.open("rb") as fh:
                fh.seek(self._offset)
                data = fh.read()
        except FileNotFoundError:
            return
        self._offset += len(data)
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            record = json.loads(line)
            self.at = max(self.at, int(record["at"]))
            self.conn = int(record["conn"])
            self.waiting = record.get("waiting")

    async def reach(self, ordinal: int, timeout: float = STALL_TIMEOUT_S) -> bool:
        """Wait until the player has played every codex frame before ``ordinal``; False if it stalls."""
        last, since = self.at, anyio.current_time()
        while True:
            self.poll()
            if self.at >= ordinal:
                return True
            if self.at != last:
                last, since = self.at, anyio.current_time()
            elif anyio.current_time() - since > timeout:
                return False
            await anyio.sleep(0.005)


@dataclass
class ReplayResult:
    report: dict[str, Any]
    difference: dict[str, Any] | None = None
    complete: bool = True
    problems: list[str] = field(default_factory=list)


async def _wait_live(host: Host, count: int, timeout: float) -> None:
    with anyio.move_on_after(timeout):
        while sum(1 for m, _ in host.notifications if m == LIVE) < count:
            await anyio.sleep(0.005)


async def _approval(host: Host, index: int, timeout: float = STALL_TIMEOUT_S) -> dict[str, Any] | None:
    """The ``index``-th ApprovalRequest the bridge pushed (waiting for it)."""
    with anyio.move_on_after(timeout):
        while True:
            requests = [p for m, p in host.notifications if m == LIVE and p.get("type") == "ApprovalRequest"]
            if len(requests) > index:
                return requests[index]
            await anyio.sleep(0.005)
    return None


async def _run_plan(host: Host, plan: list[HostStep], progress: Progress, problems: list[str]) -> list[dict[str, Any]]:
    errors: list[dict[str, Any]] = []
    for step in plan:
        if step.ordinal is not None and not await progress.reach(step.ordinal):
            problems.append(f"stalled before {step.method}: the player waits for {progress.waiting}")
            break
        if step.optional and step.ordinal is not None and await progress.reach(step.ordinal + 1, OPTIONAL_GRACE_S):
            continue  # the bridge sent it by itself
        params = dict(step.params) if step.params is not None else None
        if step.approval is not None:
            request = await _approval(host, step.approval)
            if request is None:
                problems.append(f"the bridge never pushed approval request #{step.approval + 1}")
                break
            params = {
                "requestId": request["requestId"],
                "threadId": request["threadId"],
                "decisionToken": request["decisionToken"],
                **(params or {}),
            }
        try:
            await host.call(step.method, params, timeout=STALL_TIMEOUT_S * 2)
        except HostError as exc:
            errors.append({"method": step.method, "code": exc.code, "message": normalise(exc.message)})
    return errors


# Host commands that make the bridge act (the rest only read); a default replay re-issues these.
DRIVING = frozenset(
    {
        "start_codex_app_server", "stop_codex_app_server", "codex_app_server_set_stream_kill_switch",
        "codex_app_server_initialize", "codex_app_server_initialized", "codex_app_server_account_read",
        "codex_app_server_account_login_start", "codex_app_server_account_login_cancel",
        "codex_app_server_account_login_completed", "codex_app_server_account_updated",
        "codex_app_server_account_logout", "codex_app_server_thread_start", "codex_app_server_turn_start",
        "codex_app_server_turn_interrupt", "codex_app_server_thread_list", "codex_app_server_thread_resume",
        "codex_app_server_request_thread_snapshot", "codex_app_server_submit_approval", "set_otlp_receiver_enabled",
        "delete_captured_thread",
    }
)  # fmt: skip


@dataclass
class HostRun:
    compared: int = 0
    difference: dict[str, Any] | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)


async def _run_host(
    host: Host,
    exchanges: list[Exchange],
    progress: Progress,
    problems: list[str],
    *,
    compare: bool,
    crashes: list[tuple[float, Path]],
) -> HostRun:
    """Re-send the recorded host requests (all and compared, or only the driving ones).

    ``crashes``: (recorded time, go-file) of codex connections that crashed; a crash is let
    happen once the host requests recorded before it have been sent.
    """
    recorded_approvals: list[Any] = []
    run = HostRun()
    pending = sorted(crashes)
    try:
        await _host_loop(host, exchanges, progress, problems, compare, pending, recorded_approvals, run)
    finally:
        for _, go in pending:
            go.touch()
    return run


async def _host_loop(
    host: Host,
    exchanges: list[Exchange],
    progress: Progress,
    problems: list[str],
    compare: bool,
    pending: list[tuple[float, Path]],
    recorded_approvals: list[Any],
    run: HostRun,
) -> None:
    for ex in exchanges:
        while pending and pending[0][0] <= ex.t:
            pending.pop(0)[1].touch()
        request = dict(ex.request)
        method = request.get("method")
        if method == "shutdown":
            break  # the replay shuts the bridge down itself, after reading the result
        if not compare and method not in DRIVING:
            continue
        if not await progress.reach(ex.sidecar_before):
            problems.append(f"stalled before host request {method}: the player waits for {progress.waiting}")
            break
        if compare:
            await _wait_live(host, ex.live_before, SETTLE_TIMEOUT_S)
        params = request.get("params")
        if method == "codex_app_server_submit_approval" and isinstance(params, dict):
            recorded_id = params.get("requestId")
            if recorded_id not in recorded_approvals:
                recorded_approvals.append(recorded_id)
            live = await _approval(host, recorded_approvals.index(recorded_id))
            if live is not None:
                request["params"] = {**params, "requestId": live["requestId"], "decisionToken": live["decisionToken"]}
        await host.send(request)
        try:
            answer = await host.wait_response(request["id"], timeout=STALL_TIMEOUT_S * 2)
        except TimeoutError:
            problems.append(f"the bridge did not answer host request {method}")
            break
        if "error" in answer and not compare:
            error = answer["error"]
            run.errors.append({"method": method, "code": error.get("code"), "message": normalise(error.get("message"))})
        run.compared += 1
        if compare and run.difference is None and ex.answer is not None:
            found = first_difference(normalise(_answer(ex.answer)), normalise(_answer(answer)))
            if found is not None:
                where, was, now = found
                run.difference = {"request": run.compared, "method": method, "at": where, "recorded": was,
                                  "replayed": now}  # fmt: skip


def _answer(message: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in message.items() if k in ("result", "error")}


def read_outcome(data_dir: Path) -> dict[str, Any]:
    """Captured threads, dedup decisions and the mode timeline from a stopped bridge's store."""
    from bridge.capture.store import CaptureStore
    from bridge.config.paths import DataDir
    from bridge.reliability import history
    from bridge.store.db import Database

    db = Database(DataDir(data_dir).database)
    try:
        store = CaptureStore(db)
        listed = store.list_threads(1000, None)
        threads = []
        for entry in sorted(listed, key=lambda t: (t.created_at_iso or "", t.thread_id)):
            thread = store.get_thread(entry.thread_id)
            if thread is not None:
                threads.append(normalise(msgspec.to_builtins(thread)))
        decisions = [normalise(msgspec.to_builtins(d)) for d in reversed(store.decision_log(1000))]
        transitions = db.read(lambda c: history.recent_transitions(c, 1000))
        modes = [{"fromMode": t.from_mode, "toMode": t.to_mode, "reason": t.reason} for t in reversed(transitions)]
    finally:
        db.close()
    return {"threads": threads, "dedup": decisions, "modes": normalise(modes)}


async def replay(
    path: Path,
    *,
    realtime: bool = False,
    host_side: bool = False,
    work_dir: Path | None = None,
    log: Callable[[str], None] | None = None,
) -> ReplayResult:
    """Replay ``path`` through a fresh bridge; see the module docstring."""
    path = Path(path).resolve()
    lines = load(path)
    scripts = conn_scripts(lines)
    total = sum(len(s.steps) for s in scripts.values())
    exchanges = host_exchanges(lines)
    if host_side and not exchanges:
        raise ValueError(f"{path} has no host side to replay (it was recorded by `capture-bridge record`?)")
    with tempfile.TemporaryDirectory(prefix="capture-bridge-replay-") as tmp:
        root = Path(work_dir) if work_dir is not None else Path(tmp)
        state = root / "player"
        state.mkdir(parents=True, exist_ok=True)
        launcher = write_launcher(state)
        config = {
            "autoIngestEnabled": baseline_enabled(lines),
            "appServerAuthMode": required_auth_mode(scripts),
            "otlpReceiver": {"host": "127.0.0.1", "port": 0},
            "approvals": {"timeoutMs": 600000},
            "codex": {
                "binaryPath": str(launcher),
                "env": {
                    ENV_TRANSCRIPT: str(path),
                    ENV_STATE: str(state),
                    ENV_REALTIME: "1" if realtime else "0",
                    ENV_GATE: "1" if exchanges else "0",
                },
            },
        }
        progress = Progress(state / "progress")
        problems: list[str] = []
        host_errors: list[dict[str, Any]] = []
        compared, difference = 0, None
        data_dir = root / "data"
        async with spawn_bridge(root, config=config, data_dir=data_dir) as host:
            if exchanges:
                crashes = [
                    (sc.exit_t, state / f"crash-{sc.conn}")
                    for sc in scripts.values()
                    if sc.exit_t is not None and not sc.exit_expected
                ]
                run = await _run_host(host, exchanges, progress, problems, compare=host_side, crashes=crashes)
                compared, difference, host_errors = run.compared, run.difference, run.errors
            else:
                host_errors = await _run_plan(host, host_plan(scripts), progress, problems)
            if not problems and not await progress.reach(total):
                problems.append(f"stalled: the player waits for {progress.waiting}")
            await host.call("shutdown")
            await host.wait_exit(10)
        outcome = read_outcome(data_dir)
    report: dict[str, Any] = {
        "transcript": {
            "file": path.name,
            "hostFrames": sum(1 for line in lines if line.channel == "host" and line.is_frame),
            "sidecarFrames": total,
            "codexConnections": len(scripts),
        },
        "replay": {
            "mode": "host" if host_side else "sidecar",
            "played": min(progress.at, total),
            "complete": not problems and progress.at >= total,
            "problems": problems,
        },
        **outcome,
    }
    if host_side:
        report["host"] = {"requests": len(exchanges), "compared": compared, "firstDifference": difference}
    else:
        report["replay"]["hostErrors"] = host_errors
    return ReplayResult(report, difference, report["replay"]["complete"], problems)
