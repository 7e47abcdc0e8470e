"""Replaying the decision log: every logged dedup decision re-decided from its inputs.

The release gate's determinism check (docs/reliability.md): the same inputs must
always give the same decision, so a replay that disagrees is a defect worth a No-Go.
"""

from __future__ import annotations

import sqlite3

from bridge.capture.ledger import decide


def replay_logged_decisions(conn: sqlite3.Connection, since_ms: int) -> tuple[bool, int, str]:
    """Re-decide every decision logged since ``since_ms`` from its inputs (the gate's determinism check).

    Returns (all equal, how many, the first difference).
    """
    rows = conn.execute(
        "SELECT key, decision, incoming_source, stored_source, chosen_source, replaced_source, preferred_source "
        "FROM decisions WHERE at_ms >= ? ORDER BY id",
        (since_ms,),
    ).fetchall()
    for key, decision, incoming, stored, chosen, replaced, preferred in rows:
        again = decide(stored, incoming, preferred)
        if (again.decision, again.chosen_source, again.replaced_source) != (decision, chosen, replaced):
            return False, len(rows), f"{key}: logged {decision}, replaying its inputs gives {again.decision}"
    return True, len(rows), ""
