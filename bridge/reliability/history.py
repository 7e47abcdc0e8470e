"""The recorded history of capture reliability: SQL over one ``sqlite3`` connection.

Tables: ``mode_transitions`` (every mode change, and the first mode after a
start with ``from_mode`` NULL), ``reliability_events`` (``bridge_start``,
``bridge_stop``, ``crash_loop``, ``sidecar_exit``) and the ``kv`` row
``reliability.snapshot`` (the latest evaluation: mode, facts, reasons).

Every reader takes a plain connection, so the running bridge (its reader
connection) and the CLI (a read-only connection to the same WAL database, safe
while a bridge writes) use the very same queries. A database from an older
bridge that lacks a table reads as empty history.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import msgspec

from bridge.capture.decisions import replay_logged_decisions
from bridge.clock import iso_ms

SNAPSHOT_KEY = "reliability.snapshot"
TRANSITIONS_KEPT = 100  # what the status shows

BRIDGE_START = "bridge_start"
BRIDGE_STOP = "bridge_stop"
CRASH_LOOP = "crash_loop"
SIDECAR_EXIT = "sidecar_exit"


class TransitionWire(msgspec.Struct, rename="camel", kw_only=True):
    """``capture-reliability-transition`` params and one entry of ``transitions``."""

    at_iso: str
    from_mode: str | None
    to_mode: str
    reason: str


class Transition(msgspec.Struct, frozen=True):
    at_ms: int
    from_mode: str | None
    to_mode: str
    reason: str

    def wire(self) -> TransitionWire:
        return TransitionWire(
            at_iso=iso_ms(self.at_ms), from_mode=self.from_mode, to_mode=self.to_mode, reason=self.reason
        )


class Event(msgspec.Struct, frozen=True):
    at_ms: int
    kind: str
    detail: str


# ---------------------------------------------------------------------- writing


def insert_transition(conn: sqlite3.Connection, t: Transition) -> None:
    conn.execute(
        "INSERT INTO mode_transitions(at_ms, from_mode, to_mode, reason) VALUES (?, ?, ?, ?)",
        (t.at_ms, t.from_mode, t.to_mode, t.reason),
    )


def prune(conn: sqlite3.Connection, before_ms: int) -> int:
    """Forget transitions and events older than ``before_ms``, keeping the newest transition
    (the current mode's origin) whatever its age; returns the rows removed."""
    removed = conn.execute(
        "DELETE FROM mode_transitions WHERE at_ms < ? AND id < (SELECT max(id) FROM mode_transitions)",
        (before_ms,),
    ).rowcount
    if _has_table(conn, "reliability_events"):
        removed += conn.execute("DELETE FROM reliability_events WHERE at_ms < ?", (before_ms,)).rowcount
    return removed


def insert_event(conn: sqlite3.Connection, e: Event) -> None:
    conn.execute("INSERT INTO reliability_events(at_ms, kind, detail) VALUES (?, ?, ?)", (e.at_ms, e.kind, e.detail))


def save_snapshot(conn: sqlite3.Connection, snapshot: dict[str, Any], at_ms: int) -> None:
    conn.execute(
        "INSERT INTO kv(key, value, updated_at_ms) VALUES (?, ?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at_ms = excluded.updated_at_ms",
        (SNAPSHOT_KEY, msgspec.json.encode(snapshot), at_ms),
    )


# ---------------------------------------------------------------------- reading


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone()
    return row is not None


def recent_transitions(conn: sqlite3.Connection, limit: int = TRANSITIONS_KEPT) -> list[Transition]:
    """Newest first."""
    if not _has_table(conn, "mode_transitions"):
        return []
    rows = conn.execute(
        "SELECT at_ms, from_mode, to_mode, reason FROM mode_transitions ORDER BY id DESC LIMIT ?", (limit,)
    ).fetchall()
    return [Transition(*row) for row in rows]


def read_snapshot(conn: sqlite3.Connection) -> dict[str, Any] | None:
    if not _has_table(conn, "kv"):
        return None
    row = conn.execute("SELECT value FROM kv WHERE key = ?", (SNAPSHOT_KEY,)).fetchone()
    if row is None:
        return None
    try:
        value = msgspec.json.decode(row[0])
    except msgspec.DecodeError:
        return None
    return value if isinstance(value, dict) else None


def events(conn: sqlite3.Connection, since_ms: int, kinds: tuple[str, ...] | None = None) -> list[Event]:
    """Events at or after ``since_ms``, oldest first."""
    if not _has_table(conn, "reliability_events"):
        return []
    rows = conn.execute(
        "SELECT at_ms, kind, detail FROM reliability_events WHERE at_ms >= ? ORDER BY id", (since_ms,)
    ).fetchall()
    found = [Event(*row) for row in rows]
    return [e for e in found if kinds is None or e.kind in kinds]


def last_event(conn: sqlite3.Connection, kind: str) -> Event | None:
    if not _has_table(conn, "reliability_events"):
        return None
    row = conn.execute(
        "SELECT at_ms, kind, detail FROM reliability_events WHERE kind = ? ORDER BY id DESC LIMIT 1", (kind,)
    ).fetchone()
    return Event(*row) if row else None


def replay_decisions(conn: sqlite3.Connection, since_ms: int) -> tuple[bool, int, str]:
    """Re-decide every logged dedup decision from its inputs: (all equal, how many, first difference)."""
    if not _has_table(conn, "decisions"):
        return True, 0, ""
    return replay_logged_decisions(conn, since_ms)


def decision_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """How many logged decisions of each kind the decision log still holds."""
    counts = {"accepted": 0, "duplicate": 0, "replaced": 0, "dropped": 0}
    if _has_table(conn, "decisions"):
        for decision, n in conn.execute("SELECT decision, COUNT(*) FROM decisions GROUP BY decision"):
            counts[decision] = n
    return counts


def last_baseline_record_ms(conn: sqlite3.Connection) -> int | None:
    """When the newest stored OTEL record arrived (rows are appended as they arrive: the last row's time)."""
    if not _has_table(conn, "otel_records"):
        return None
    row = conn.execute("SELECT received_at_ms FROM otel_records ORDER BY id DESC LIMIT 1").fetchone()
    return int(row[0]) if row and row[0] is not None else None


class WindowHistory(msgspec.Struct, frozen=True):
    """What the gate needs from the store for one window."""

    mode_at_start: str | None  # the mode in effect when the window opened (None: no bridge was running)
    transitions: tuple[Transition, ...]  # inside the window, oldest first
    crash_loops: tuple[Event, ...]
    last_transition: Transition | None  # the newest ever
    stopped_at_ms: int | None  # a recorded bridge stop after the newest transition
    dedup: tuple[bool, int, str]


def window_history(conn: sqlite3.Connection, start_ms: int) -> WindowHistory:
    """Read one window's history in one snapshot of the database (call inside a read transaction)."""
    has_transitions = _has_table(conn, "mode_transitions")
    before: Transition | None = None
    inside: list[Transition] = []
    if has_transitions:
        row = conn.execute(
            "SELECT at_ms, from_mode, to_mode, reason FROM mode_transitions WHERE at_ms < ? ORDER BY id DESC LIMIT 1",
            (start_ms,),
        ).fetchone()
        before = Transition(*row) if row else None
        inside = [
            Transition(*r)
            for r in conn.execute(
                "SELECT at_ms, from_mode, to_mode, reason FROM mode_transitions WHERE at_ms >= ? ORDER BY id",
                (start_ms,),
            )
        ]
    mode_at_start = before.to_mode if before else None
    if before is not None and _has_table(conn, "reliability_events"):
        stop = conn.execute(
            "SELECT 1 FROM reliability_events WHERE kind = ? AND at_ms >= ? AND at_ms < ? LIMIT 1",
            (BRIDGE_STOP, before.at_ms, start_ms),
        ).fetchone()
        if stop is not None:
            mode_at_start = None  # that bridge stopped before the window opened
    newest = recent_transitions(conn, 1)
    last = newest[0] if newest else None
    stopped_at: int | None = None
    stop_event = last_event(conn, BRIDGE_STOP)
    if last is not None and stop_event is not None and stop_event.at_ms >= last.at_ms:
        start_event = last_event(conn, BRIDGE_START)
        if start_event is None or start_event.at_ms <= stop_event.at_ms:
            stopped_at = stop_event.at_ms
    return WindowHistory(
        mode_at_start=mode_at_start,
        transitions=tuple(inside),
        crash_loops=tuple(events(conn, start_ms, (CRASH_LOOP,))),
        last_transition=last,
        stopped_at_ms=stopped_at,
        dedup=replay_decisions(conn, start_ms),
    )
