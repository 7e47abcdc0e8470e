"""Versioned schema migrations, applied in order on start.

Append a new entry to :data:`MIGRATIONS` for every schema change; never edit
one that has shipped. ``PRAGMA user_version`` records how far a database got,
and each migration runs in its own transaction, so a crash mid-upgrade leaves
the previous version intact.
"""

from __future__ import annotations

MIGRATIONS: list[str] = [
    # 1: bridge-wide key/value state and the host notification log.
    """
    CREATE TABLE kv (
        key TEXT PRIMARY KEY,
        value BLOB NOT NULL,
        updated_at_ms INTEGER NOT NULL
    );
    CREATE TABLE mode_transitions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at_ms INTEGER NOT NULL,
        from_mode TEXT,
        to_mode TEXT NOT NULL,
        reason TEXT NOT NULL
    );
    CREATE INDEX mode_transitions_at ON mode_transitions(at_ms);
    """,
]
