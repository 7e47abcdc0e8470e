"""Updates of stored rows that need nothing but the event: no cache, no ledger (run inside the batch's transaction).

What the baseline adds to an item the stream already wrote, the source a losing
copy still counts as, and the baseline's per-request usage summed into its turn.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import msgspec

from bridge.capture.events import CaptureEvent

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.decode


def merge_extra(conn: sqlite3.Connection, ev: CaptureEvent) -> None:
    """Merge what the baseline adds to an item (tool decision, duration…) into ``items.extra``."""
    conn.execute(
        "UPDATE items SET extra = json_patch(coalesce(extra, '{}'), ?) WHERE thread_id = ? AND item_id = ?",
        (_encode(ev.usage).decode(), ev.thread_id, ev.item_id),
    )


def mark_seen(conn: sqlite3.Connection, ev: CaptureEvent) -> None:
    """A copy that lost to the stored one still counts as seen by its source."""
    row = conn.execute(
        "SELECT seen_by FROM items WHERE thread_id = ? AND item_id = ?", (ev.thread_id, ev.item_id)
    ).fetchone()
    if row is not None:
        seen = sorted(set(_decode(row[0])) | {ev.source})
        conn.execute(
            "UPDATE items SET seen_by = ? WHERE thread_id = ? AND item_id = ?",
            (_encode(seen).decode(), ev.thread_id, ev.item_id),
        )


def add_baseline_usage(
    conn: sqlite3.Connection, thread_id: str, turn_id: str, counts: dict[str, int | float], at: int
) -> None:
    """Add the baseline's counts (tokens, duration… of a batch's API requests) to the turn's ``usage.otel`` sums."""
    row = conn.execute("SELECT usage FROM turns WHERE thread_id = ? AND turn_id = ?", (thread_id, turn_id)).fetchone()
    if row is None:
        return
    usage = _decode(row[0]) if row[0] else {}
    found = usage.get("otel")
    sums: dict[str, Any] = found if isinstance(found, dict) else {}
    for name, value in counts.items():
        sums[name] = sums.get(name, 0) + value
    usage["otel"] = sums
    conn.execute(
        "UPDATE turns SET usage = ?, last_event_at_ms = ? WHERE thread_id = ? AND turn_id = ?",
        (_encode(usage).decode(), at, thread_id, turn_id),
    )
