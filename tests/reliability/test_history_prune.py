"""The mode history ages out with the retention window, but the current mode's origin stays."""

from __future__ import annotations

from pathlib import Path

from bridge.reliability import history
from bridge.store.db import Database


def test_prune_keeps_the_newest_transition(tmp_path: Path) -> None:
    db = Database(tmp_path / "r.db")

    def seed(conn):  # type: ignore[no-untyped-def]
        for at, mode in [(100, "FAILURE"), (200, "OTEL_ONLY"), (300, "HYBRID_ACTIVE")]:
            conn.execute(
                "INSERT INTO mode_transitions (at_ms, from_mode, to_mode, reason) VALUES (?, NULL, ?, 'r')", (at, mode)
            )
        conn.execute("INSERT INTO reliability_events (at_ms, kind, detail) VALUES (150, 'crash_loop', 'x')")

    db.write(seed)
    removed = db.write(lambda conn: history.prune(conn, before_ms=10_000))
    left = db.read(lambda c: c.execute("SELECT to_mode FROM mode_transitions").fetchall())
    assert removed == 3
    assert left == [("HYBRID_ACTIVE",)]
