"""The service in-process: the sidecar-facts adapter as a table, recording, and a quiet stop."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio
import pytest

from bridge.config.store import ConfigStore
from bridge.reliability import history
from bridge.reliability.service import ReliabilityService, sidecar_facts
from bridge.sidecar.status import CodexAppServerStatus
from bridge.store.db import Database


def status(**over: Any) -> CodexAppServerStatus:
    base: dict[str, Any] = {
        "state": "running",
        "initialized": True,
        "initialize_sent": True,
        "auth_state": "authenticated",
        "auth_mode": "chatgpt",
        "auth_mode_allowed": True,
        "stream_healthy": True,
        "stream_kill_switch": False,
        "restart_budget": 3,
        "restart_attempts_in_window": 0,
        "last_error": None,
        "last_info": None,
        "auth_url": None,
        "pid": 42,
        "codex_version": "0.169.0",
        "connection": "spawn",
        "followed_thread_ids": [],
        "last_transition_at_iso": "2026-01-01T00:00:00.000Z",
    }
    base.update(over)
    return CodexAppServerStatus(**base)


@pytest.mark.parametrize(
    ("over", "frames_valid", "alive", "confirmed", "allowed"),
    [
        ({}, True, True, True, True),
        # degraded with every other cause ruled out: the liveness probe failed
        ({"state": "degraded", "stream_healthy": False}, True, False, True, True),
        # degraded because of a bad frame / the kill switch / a refused auth mode: alive
        ({"state": "degraded", "stream_healthy": False}, False, True, True, True),
        ({"state": "degraded", "stream_healthy": False, "stream_kill_switch": True}, True, True, True, True),
        (
            {"state": "degraded", "stream_healthy": False, "auth_mode": "apikey", "auth_mode_allowed": False},
            True,
            True,
            True,
            False,
        ),
        ({"auth_state": "needs_login", "auth_mode": None, "auth_mode_allowed": False}, True, True, False, False),
        ({"state": "inactive", "pid": None}, False, False, True, True),
        ({"state": "crash_loop", "pid": None}, True, False, True, True),
    ],
)
def test_sidecar_facts_from_the_public_status(
    over: dict[str, Any], frames_valid: bool, alive: bool, confirmed: bool, allowed: bool
) -> None:
    facts = sidecar_facts(status(**over), frames_valid)
    assert facts["sidecar_alive"] is alive
    assert facts["auth_confirmed"] is confirmed
    assert facts["auth_mode_allowed"] is allowed
    if facts["sidecar_state"] not in ("running", "degraded"):
        assert facts["frames_valid"] is True  # a process that is gone sends no bad frames


def test_no_supervisor_means_no_stream() -> None:
    facts = sidecar_facts(None, True)
    assert facts["sidecar_state"] == "inactive" and not facts["sidecar_alive"]


class FakeReceiver:
    def __init__(self) -> None:
        self.state = "listening"

    def status(self) -> SimpleNamespace:
        return SimpleNamespace(message="Could not listen on 127.0.0.1:4318: address in use.")


async def test_records_only_mode_changes_and_the_stop_is_not_one(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"autoIngestEnabled": true, "streamEnrichmentEnabled": false}')
    config = ConfigStore(tmp_path / "config.json")
    db = Database(tmp_path / "capture.sqlite3")
    pushed: list[tuple[str, Any]] = []
    receiver = FakeReceiver()
    service = ReliabilityService(
        config=config,
        db=db,
        emit=lambda m, p: pushed.append((m, p)),
        receiver=receiver,  # type: ignore[arg-type]
        migration_status=lambda: ("not_needed", None),
    )
    async with anyio.create_task_group() as tg:
        await service.start(tg)
        assert [p.to_mode for _, p in pushed] == ["OTEL_ONLY"] and pushed[0][1].from_mode is None
        service.on_notification("otel-receiver-status", {"state": "listening"})  # nothing changed
        service.on_notification("session:live:event", {})  # not a fact
        assert len(pushed) == 1
        receiver.state = "error"
        service.on_notification("otel-receiver-status", {"state": "error"})
        assert [(p.from_mode, p.to_mode) for _, p in pushed] == [(None, "OTEL_ONLY"), ("OTEL_ONLY", "FAILURE")]
        receiver.state = "listening"
        service.reevaluate()
        assert pushed[-1][1].to_mode == "OTEL_ONLY"
        gate = await service.release_gate(1, 0)
        assert gate.verdict == "no_go"
        assert [c.name for c in gate.checks if not c.ok] == ["no_failure_in_window"]
        await service.stop()
        receiver.state = "stopped"  # the bridge's own shutdown stops the receiver
        service.on_notification("otel-receiver-status", {"state": "stopped"})
        service.reevaluate()
        assert len(pushed) == 3
        tg.cancel_scope.cancel()
    recorded = db.read(history.recent_transitions)
    assert [(t.from_mode, t.to_mode) for t in recorded] == [
        ("FAILURE", "OTEL_ONLY"),
        ("OTEL_ONLY", "FAILURE"),
        (None, "OTEL_ONLY"),
    ]
    kinds = [e.kind for e in db.read(lambda c: history.events(c, 0))]
    assert kinds == [history.BRIDGE_START, history.BRIDGE_STOP]
    snapshot = db.read(history.read_snapshot)
    assert snapshot is not None and snapshot["mode"] == "OTEL_ONLY"
    db.close()
