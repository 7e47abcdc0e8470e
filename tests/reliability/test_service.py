"""The service in-process: the sidecar facts from the typed state as a table, recording, and a quiet stop."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio
import pytest

from bridge.config.store import ConfigStore
from bridge.reliability import history
from bridge.reliability.service import ReliabilityService
from bridge.reliability.view import sidecar_facts
from bridge.sidecar.auth import AuthView, Handshake
from bridge.sidecar.events import SidecarState
from bridge.sidecar.status import CodexAppServerStatus, SidecarFacts
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


def state(status_over: dict[str, Any], **facts_over: Any) -> SidecarState:
    facts: dict[str, Any] = {
        "process_up": True,
        "handshake": Handshake.INITIALIZED,
        "auth": AuthView(state="authenticated", mode="chatgpt"),
        "required_mode": "chatgpt",
        "kill_switch": False,
        "alive": True,
        "last_frame_valid": True,
    }
    facts.update(facts_over)
    return SidecarState(status(**status_over), SidecarFacts(**facts))


DEGRADED = {"state": "degraded", "stream_healthy": False}


@pytest.mark.parametrize(
    ("st", "alive", "confirmed", "allowed", "frames_valid", "handshake"),
    [
        (state({}), True, True, True, True, True),
        # the supervisor's own facts say why it is degraded: nothing is guessed from the state name
        (state(DEGRADED, alive=False), False, True, True, True, True),
        (state(DEGRADED, last_frame_valid=False), True, True, True, False, True),
        (state(DEGRADED, kill_switch=True), True, True, True, True, True),
        (state(DEGRADED, auth=AuthView(state="authenticated", mode="apikey")), True, True, False, True, True),
        (state({}, auth=AuthView(state="needs_login")), True, False, False, True, True),
        (state({}, handshake=Handshake.ANSWERED), True, True, True, True, False),
        # a process that is gone is not alive and sends no bad frames
        (state({"state": "inactive", "pid": None}, process_up=False, last_frame_valid=False), False, True, True, True,
         True),
        (state({"state": "crash_loop", "pid": None}, process_up=False), False, True, True, True, True),
    ],
)
def test_sidecar_facts_from_the_typed_state(
    st: SidecarState, alive: bool, confirmed: bool, allowed: bool, frames_valid: bool, handshake: bool
) -> None:
    facts = sidecar_facts(st)
    assert facts["sidecar_state"] == st.status.state
    assert facts["sidecar_alive"] is alive
    assert facts["auth_confirmed"] is confirmed
    assert facts["auth_mode_allowed"] is allowed
    assert facts["frames_valid"] is frames_valid
    assert facts["handshake_complete"] is handshake


def test_no_supervisor_means_no_stream() -> None:
    facts = sidecar_facts(None)
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
        service.on_receiver_status(receiver.status())  # type: ignore[arg-type]  # nothing changed
        assert len(pushed) == 1
        receiver.state = "error"
        service.on_receiver_status(receiver.status())  # type: ignore[arg-type]
        assert [(p.from_mode, p.to_mode) for _, p in pushed] == [(None, "OTEL_ONLY"), ("OTEL_ONLY", "FAILURE")]
        receiver.state = "listening"
        service.reevaluate()
        assert pushed[-1][1].to_mode == "OTEL_ONLY"
        gate = await service.release_gate(1, 0)
        assert gate.verdict == "no_go"
        assert [c.name for c in gate.checks if not c.ok] == ["no_failure_in_window"]
        await service.stop()
        receiver.state = "stopped"  # the bridge's own shutdown stops the receiver
        service.on_receiver_status(receiver.status())  # type: ignore[arg-type]
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
