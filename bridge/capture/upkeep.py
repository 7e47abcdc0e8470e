"""Keeping the captured content tidy: incomplete turns, deletion, retention (SQL only, on a connection)."""

from __future__ import annotations

import sqlite3


def mark_incomplete(conn: sqlite3.Connection, idle_before_ms: int | None) -> list[tuple[str, str]]:
    """Turns still in progress become ``incomplete`` (all, or those silent since ``idle_before_ms``)."""
    if idle_before_ms is None:
        rows = conn.execute("SELECT thread_id, turn_id FROM turns WHERE status = 'inProgress'").fetchall()
    else:
        rows = conn.execute(
            "SELECT thread_id, turn_id FROM turns WHERE status = 'inProgress' AND last_event_at_ms < ?",
            (idle_before_ms,),
        ).fetchall()
    conn.executemany(
        "UPDATE turns SET status = 'incomplete' WHERE thread_id = ? AND turn_id = ? AND status = 'inProgress'",
        rows,
    )
    return [(thread_id, turn_id) for thread_id, turn_id in rows]


def threads_with_open_turns(conn: sqlite3.Connection, since_ms: int) -> list[str]:
    rows = conn.execute(
        "SELECT DISTINCT thread_id FROM turns WHERE status IN ('inProgress', 'incomplete') "
        "AND captured_at_ms >= ? ORDER BY thread_id",
        (since_ms,),
    ).fetchall()
    return [r[0] for r in rows]


def delete_thread(conn: sqlite3.Connection, thread_id: str) -> bool:
    for table in ("deltas", "items", "turns"):
        conn.execute(f"DELETE FROM {table} WHERE thread_id = ?", (thread_id,))
    cur = conn.execute("DELETE FROM threads WHERE thread_id = ?", (thread_id,))
    return cur.rowcount > 0


def apply_retention(conn: sqlite3.Connection, older_than_ms: int) -> int:
    """Delete what was captured before ``older_than_ms``; the number of threads removed."""
    for table in ("deltas", "items", "turns"):
        conn.execute(f"DELETE FROM {table} WHERE captured_at_ms < ?", (older_than_ms,))
    # dedup memory older than the data it protected goes too (a replay that old is new again)
    conn.execute("DELETE FROM ledger WHERE at_ms < ?", (older_than_ms,))
    conn.execute("DELETE FROM decisions WHERE at_ms < ?", (older_than_ms,))
    cur = conn.execute(
        "DELETE FROM threads WHERE captured_at_ms < ? AND thread_id NOT IN (SELECT thread_id FROM turns) "
        "AND thread_id NOT IN (SELECT thread_id FROM items)",
        (older_than_ms,),
    )
    return cur.rowcount
