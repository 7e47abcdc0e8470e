"""The Go / No-Go rule as a table (pure), and the history it reads from a real store."""

from __future__ import annotations

from pathlib import Path

import msgspec.structs
import pytest

from bridge.reliability import history
from bridge.reliability.gate import GateInputs, evaluate_gate
from bridge.reliability.history import Event, Transition
from bridge.store.db import Database

NOW = 1_800_000_000_000
H = 3_600_000

GOOD = GateInputs(
    now_ms=NOW,
    window_hours=24,
    stable_seconds=10,
    mode_at_window_start=None,
    transitions=(Transition(NOW - 2 * H, None, "OTEL_ONLY", "started"),),
    crash_loops=(),
    current_mode="OTEL_ONLY",
    current_since_ms=NOW - 2 * H,
    live=True,
    stopped_at_ms=None,
    migration_status="not_needed",
    migration_error=None,
    dedup=(True, 12, ""),
)


def failing(**changes: object) -> set[str]:
    result = evaluate_gate(msgspec.structs.replace(GOOD, **changes))
    failed = {c.name for c in result.checks if not c.ok}
    assert (result.verdict == "go") == (not failed)
    return failed


def test_good_history_is_go() -> None:
    result = evaluate_gate(GOOD)
    assert result.verdict == "go"
    assert [c.name for c in result.checks] == [
        "no_failure_in_window",
        "no_crash_loop_in_window",
        "migration_status",
        "mode_stable",
        "dedup_deterministic",
    ]
    assert result.window_hours == 24


@pytest.mark.parametrize(
    ("changes", "failed"),
    [
        ({"current_mode": "HYBRID_ACTIVE"}, set()),
        ({"current_mode": "DEGRADED_STREAMING"}, {"mode_stable"}),
        ({"current_mode": "FAILURE"}, {"mode_stable"}),
        ({"current_mode": None, "current_since_ms": None}, {"mode_stable"}),
        ({"current_since_ms": NOW - 9_000}, {"mode_stable"}),
        ({"current_since_ms": NOW - 10_000}, set()),
        ({"stable_seconds": 0, "current_since_ms": NOW}, set()),
        # a stopped bridge: stability is measured up to its recorded stop
        ({"live": False, "stopped_at_ms": NOW - 2 * H + 5_000}, {"mode_stable"}),
        ({"live": False, "stopped_at_ms": NOW - H}, set()),
        ({"live": False, "stopped_at_ms": None}, set()),
        ({"migration_status": "migrated"}, set()),
        ({"migration_status": "deferred"}, set()),
        ({"migration_status": "not_needed"}, set()),
        ({"migration_status": "failed", "migration_error": "disk full"}, {"migration_status"}),
        ({"migration_status": "not_started"}, {"migration_status"}),
        ({"migration_status": None, "migration_error": "boom"}, {"migration_status"}),
        ({"dedup": (False, 3, "k: logged dropped, replaying its inputs gives replaced")}, {"dedup_deterministic"}),
        ({"dedup": (True, 0, "")}, set()),
        ({"crash_loops": (Event(NOW - H, "crash_loop", "3 exits"),)}, {"no_crash_loop_in_window"}),
        (
            {
                "transitions": (
                    Transition(NOW - 3 * H, None, "FAILURE", "autoIngestEnabled is false"),
                    Transition(NOW - 2 * H, "FAILURE", "OTEL_ONLY", "ok"),
                )
            },
            {"no_failure_in_window"},
        ),
        ({"mode_at_window_start": "FAILURE"}, {"no_failure_in_window"}),
        ({"mode_at_window_start": "DEGRADED_STREAMING"}, set()),
        (
            {"migration_status": "failed", "crash_loops": (Event(NOW, "crash_loop", "x"),), "current_mode": "FAILURE"},
            {"migration_status", "no_crash_loop_in_window", "mode_stable"},
        ),
    ],
)
def test_gate_table(changes: dict[str, object], failed: set[str]) -> None:
    assert failing(**changes) == failed


def test_details_name_the_cause() -> None:
    result = evaluate_gate(
        msgspec.structs.replace(
            GOOD,
            crash_loops=(Event(NOW - H, "crash_loop", "exited 3 times within 60 s"),),
            migration_status="failed",
            migration_error="disk full",
        )
    )
    by_name = {c.name: c.detail for c in result.checks}
    assert "crash_loop" in by_name["no_crash_loop_in_window"] and "exited 3 times" in by_name["no_crash_loop_in_window"]
    assert "failed" in by_name["migration_status"] and "disk full" in by_name["migration_status"]


# ---------------------------------------------------------------- the history it reads


def _db(tmp_path: Path) -> Database:
    return Database(tmp_path / "capture.sqlite3")


def test_window_history_reads_what_was_recorded(tmp_path: Path) -> None:
    db = _db(tmp_path)
    start = NOW - 24 * H

    def record(conn: object) -> None:
        import sqlite3

        assert isinstance(conn, sqlite3.Connection)
        history.insert_transition(conn, Transition(start - 5 * H, None, "FAILURE", "old"))
        history.insert_event(conn, Event(start - 4 * H, history.BRIDGE_STOP, "stopped"))
        history.insert_event(conn, Event(start + H, history.BRIDGE_START, "started"))
        history.insert_transition(conn, Transition(start + H, None, "OTEL_ONLY", "start"))
        history.insert_event(conn, Event(start + 2 * H, history.CRASH_LOOP, "3 exits"))
        history.insert_event(conn, Event(start + 2 * H, history.SIDECAR_EXIT, "exit 1"))
        history.insert_event(conn, Event(start + 3 * H, history.BRIDGE_STOP, "stopped"))

    db.write(record)
    window = db.read(lambda c: history.window_history(c, start))
    assert window.mode_at_start is None  # the FAILURE ended with that bridge's stop, before the window
    assert [t.to_mode for t in window.transitions] == ["OTEL_ONLY"]
    assert [e.detail for e in window.crash_loops] == ["3 exits"]
    assert window.last_transition is not None and window.last_transition.to_mode == "OTEL_ONLY"
    assert window.stopped_at_ms == start + 3 * H
    assert window.dedup == (True, 0, "")
    db.close()


def test_failure_in_effect_when_the_window_opens_counts(tmp_path: Path) -> None:
    db = _db(tmp_path)
    start = NOW - 24 * H
    db.write(lambda c: history.insert_transition(c, Transition(start - H, None, "FAILURE", "no baseline")))
    window = db.read(lambda c: history.window_history(c, start))
    assert window.mode_at_start == "FAILURE"
    assert window.stopped_at_ms is None
    db.close()


def test_dedup_replay_finds_a_decision_its_inputs_do_not_give(tmp_path: Path) -> None:
    db = _db(tmp_path)
    rows = [
        ("k1", "accepted", "otel", None, "otel", None, "app_server_stream"),
        ("k1", "replaced", "app_server_stream", "otel", "app_server_stream", "otel", "app_server_stream"),
        ("k2", "accepted", "otel", None, "otel", None, "app_server_stream"),
    ]
    sql = (
        "INSERT INTO decisions(at_ms, key, decision, incoming_source, stored_source, chosen_source, "
        "replaced_source, preferred_source) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    )
    db.write(lambda c: c.executemany(sql, [(NOW, *r) for r in rows]))
    assert db.read(lambda c: history.replay_decisions(c, NOW - H)) == (True, 3, "")
    # a decision the rule would not make (an ambiguous source state)
    bad = ("k3", "dropped", "app_server_stream", "otel", "otel", None, "app_server_stream")
    db.write(lambda c: c.execute(sql, (NOW, *bad)))
    ok, count, difference = db.read(lambda c: history.replay_decisions(c, NOW - H))
    assert not ok and count == 4 and difference.startswith("k3: logged dropped")
    assert db.read(lambda c: history.replay_decisions(c, NOW + 1)) == (True, 0, "")
    db.close()
