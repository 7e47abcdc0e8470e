"""Reading a data dir's reliability history from outside the bridge (the CLI).

A data dir belongs to one bridge at a time (``bridge.lock``), so the CLI
never opens a second bridge: it opens the SQLite database read-only (WAL lets
a reader work next to the running bridge's writer), reads ``config.json``,
``runtime.json`` and the collector migration status, and writes nothing.

What it can know, and what it cannot:

- the recorded transitions, crash loops, bridge starts and stops, the dedup
  decision log and the last recorded evaluation (mode, reasons, facts);
- whether a bridge is running (the pid in ``runtime.json`` / ``bridge.lock``
  is alive);
- not the live facts: the current mode is the last one recorded. A running
  bridge records every change within milliseconds, so for it that is the
  live mode; for a stopped bridge it is the mode it had when it stopped (it
  is not re-evaluated; a bridge stopped hard, e.g. kill -9, records no stop);
- not the in-memory metrics (RPC timeouts, lag percentiles, pending RPCs):
  only what the store holds (decision counts, the last baseline record).
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from bridge.clock import iso_ms
from bridge.config.paths import DataDir, process_alive
from bridge.reliability import history
from bridge.reliability.gate import GateInputs, ReleaseGate, evaluate_gate
from bridge.reliability.history import WindowHistory


class Unreadable(Exception):
    """The data dir or its database cannot be read; the message says why."""


def running_pid(data_dir: DataDir) -> int | None:
    """The pid of the bridge running on ``data_dir``, if any (from runtime.json or bridge.lock)."""
    candidates: list[int] = []
    try:
        runtime = msgspec.json.decode(data_dir.runtime.read_bytes())
        if isinstance(runtime, dict) and isinstance(runtime.get("pid"), int):
            candidates.append(runtime["pid"])
    except (OSError, msgspec.DecodeError):
        pass
    try:
        text = data_dir.lock.read_text().strip()
        if text.isdigit():
            candidates.append(int(text))
    except OSError:
        pass
    for pid in candidates:
        if pid != os.getpid() and process_alive(pid):
            return pid
    return None


def runtime_info(data_dir: DataDir) -> dict[str, Any]:
    try:
        value = msgspec.json.decode(data_dir.runtime.read_bytes())
    except (OSError, msgspec.DecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def open_readonly(path: Path) -> sqlite3.Connection | None:
    """A read-only connection to the store, or None when there is no store yet."""
    if not path.exists():
        return None
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10.0)
        conn.execute("PRAGMA busy_timeout=10000")
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
    except sqlite3.Error as exc:
        raise Unreadable(f"cannot read the store {path}: {exc}") from exc
    return conn


def config_summary(data_dir: DataDir) -> dict[str, Any] | None:
    """The switches the mode depends on, from config.json (defaults filled in); None if invalid."""
    from bridge.config.store import ConfigStore
    from bridge.config.validate import ConfigError

    try:
        cfg = ConfigStore(data_dir.config).current
    except (ConfigError, OSError):
        return None
    return {
        "autoIngestEnabled": cfg.auto_ingest_enabled,
        "streamEnrichmentEnabled": cfg.stream_enrichment_enabled,
        "streamKillSwitch": cfg.stream_kill_switch,
        "appServerAuthMode": cfg.app_server_auth_mode,
        "otlpReceiverEnabled": cfg.otlp_receiver.enabled,
    }


def migration_status() -> tuple[str | None, str | None]:
    from bridge.reliability.service import _collector_status

    return _collector_status()


@dataclass(frozen=True)
class Recorded:
    """One consistent read of a data dir."""

    pid: int | None
    window: WindowHistory
    transitions: list[history.Transition]  # newest first, <= 100
    snapshot: dict[str, Any] | None
    events: list[history.Event]  # inside the window
    decision_counts: dict[str, int]
    last_baseline_ms: int | None
    has_store: bool


def read_recorded(data_dir: DataDir, window_start_ms: int) -> Recorded:
    if not data_dir.root.is_dir():
        raise Unreadable(f"no capture-bridge data dir at {data_dir.root}")
    pid = running_pid(data_dir)
    conn = open_readonly(data_dir.database)
    if conn is None:
        empty = WindowHistory(None, (), (), None, None, (True, 0, ""))
        return Recorded(
            pid, empty, [], None, [], {"accepted": 0, "duplicate": 0, "replaced": 0, "dropped": 0}, None, False
        )
    try:
        conn.execute("BEGIN")  # one snapshot for every query
        window = history.window_history(conn, window_start_ms)
        return Recorded(
            pid=pid,
            window=window,
            transitions=history.recent_transitions(conn),
            snapshot=history.read_snapshot(conn),
            events=history.events(conn, window_start_ms),
            decision_counts=history.decision_counts(conn),
            last_baseline_ms=_last_baseline_ms(data_dir, conn),
            has_store=True,
        )
    except sqlite3.Error as exc:
        raise Unreadable(f"cannot read the store {data_dir.database}: {exc}") from exc
    finally:
        conn.close()


def _last_baseline_ms(data_dir: DataDir, conn: sqlite3.Connection) -> int | None:
    """The newest baseline record's arrival: in the telemetry store, or (stored by an older bridge) the main one."""
    found = [history.last_baseline_record_ms(conn)]
    telemetry = open_readonly(data_dir.telemetry)
    if telemetry is not None:
        try:
            found.append(history.last_baseline_record_ms(telemetry))
        finally:
            telemetry.close()
    known = [ms for ms in found if ms is not None]
    return max(known) if known else None


def gate_inputs(
    rec: Recorded,
    now_ms: int,
    window_hours: float,
    stable_seconds: float,
    migration: tuple[str | None, str | None],
) -> GateInputs:
    last = rec.window.last_transition
    return GateInputs(
        now_ms=now_ms,
        window_hours=window_hours,
        stable_seconds=stable_seconds,
        mode_at_window_start=rec.window.mode_at_start,
        transitions=rec.window.transitions,
        crash_loops=rec.window.crash_loops,
        current_mode=last.to_mode if last else None,
        current_since_ms=last.at_ms if last else None,
        live=rec.pid is not None,
        stopped_at_ms=rec.window.stopped_at_ms,
        migration_status=migration[0],
        migration_error=migration[1],
        dedup=rec.window.dedup,
    )


def offline_gate(data_dir: DataDir, window_hours: float, stable_seconds: float) -> tuple[ReleaseGate, Recorded]:
    now = int(time.time() * 1000)
    rec = read_recorded(data_dir, now - int(window_hours * 3_600_000))
    return evaluate_gate(gate_inputs(rec, now, window_hours, stable_seconds, migration_status())), rec


def offline_status(data_dir: DataDir, window_hours: float = 24.0) -> dict[str, Any]:
    """The reliability status as far as the store knows it (shape close to CaptureReliabilityStatus)."""
    now = int(time.time() * 1000)
    rec = read_recorded(data_dir, now - int(window_hours * 3_600_000))
    last = rec.transitions[0] if rec.transitions else None
    snap = rec.snapshot or {}
    same = last is not None and snap.get("mode") == last.to_mode
    reasons = list(snap.get("reasons") or []) if same else ([last.reason] if last else [])
    status, error = migration_status()
    counts = rec.decision_counts
    return {
        "dataDir": str(data_dir.root),
        "bridgeRunning": rec.pid is not None,
        "pid": rec.pid,
        "source": "recorded",
        "mode": last.to_mode if last else None,
        "modeSinceIso": iso_ms(last.at_ms) if last else None,
        "stoppedAtIso": iso_ms(rec.window.stopped_at_ms) if rec.window.stopped_at_ms else None,
        "otelBaselineHealthy": snap.get("otelBaselineHealthy") if same else None,
        "streamExpected": snap.get("streamExpected") if same else None,
        "streamHealthy": snap.get("streamHealthy") if same else None,
        "reasons": reasons,
        "facts": snap.get("facts") if same else None,
        "evaluatedAtIso": snap.get("atIso") if same else None,
        "metrics": {
            "decisionLogAccepted": counts["accepted"],
            "decisionLogDuplicates": counts["duplicate"],
            "decisionLogReplaced": counts["replaced"],
            "decisionLogDropped": counts["dropped"],
            "lastBaselineRecordAtIso": iso_ms(rec.last_baseline_ms) if rec.last_baseline_ms else None,
            "timeSinceLastBaselineRecordMs": now - rec.last_baseline_ms if rec.last_baseline_ms else None,
        },
        "transitions": [msgspec.to_builtins(t.wire()) for t in rec.transitions],
        "events": [{"atIso": iso_ms(e.at_ms), "kind": e.kind, "detail": e.detail} for e in rec.events],
        "windowHours": window_hours,
        "config": config_summary(data_dir),
        "receiver": runtime_info(data_dir).get("otlpReceiver") if rec.pid is not None else None,
        "migration": {"status": status, "lastError": error},
        "appServer": None,
    }
