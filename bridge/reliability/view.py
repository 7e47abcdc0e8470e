"""What the reliability status is made of: its shape, the facts as the host sees them, the metrics.

Reads only: each function looks at a subsystem as it is now and returns plain
values (docs/protocol.md §4.3); :mod:`bridge.reliability.service` puts them
together.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import msgspec

from bridge.clock import now_ms, parse_iso_ms
from bridge.reliability.history import TransitionWire
from bridge.reliability.mode import ModeFacts
from bridge.sidecar.events import SidecarState
from bridge.sidecar.status import CodexAppServerStatus

if TYPE_CHECKING:
    from bridge.capture.service import CaptureService
    from bridge.receiver.receiver import ReceiverService


class CaptureReliabilityStatus(msgspec.Struct, rename="camel", kw_only=True):
    """docs/protocol.md §4.3 (``appServer`` is a CodexAppServerStatus, or null while the supervisor is not up)."""

    mode: str
    otel_baseline_healthy: bool
    stream_expected: bool
    stream_healthy: bool
    reasons: list[str]
    metrics: dict[str, Any]
    transitions: list[TransitionWire]
    app_server: CodexAppServerStatus | None
    facts: dict[str, Any]  # beyond the contract: what the mode was computed from


def facts_dict(f: ModeFacts) -> dict[str, Any]:
    return {
        "autoIngestEnabled": f.auto_ingest_enabled,
        "receiverState": f.receiver_state,
        "streamEnrichmentEnabled": f.stream_enrichment_enabled,
        "streamKillSwitch": f.kill_switch,
        "sidecarState": f.sidecar_state,
        "handshakeComplete": f.handshake_complete,
        "authConfirmed": f.auth_confirmed,
        "authModeAllowed": f.auth_mode_allowed,
        "sidecarAlive": f.sidecar_alive,
        "framesValid": f.frames_valid,
        "requiredAuthMode": f.required_auth_mode,
        "authMode": f.auth_mode,
        "storeWritable": f.store_writable,
        "storeProblem": f.store_problem,
        "storeNote": f.store_note,
    }


def sidecar_facts(state: SidecarState | None) -> dict[str, Any]:
    """The stream half of :class:`ModeFacts`, from the supervisor's typed state (``None``: no supervisor)."""
    if state is None:
        return {
            "sidecar_state": "inactive",
            "handshake_complete": False,
            "auth_confirmed": False,
            "auth_mode_allowed": False,
            "sidecar_alive": False,
            "frames_valid": True,
            "auth_mode": None,
        }
    return {
        "sidecar_state": state.status.state,
        "handshake_complete": state.handshake_complete,
        "auth_confirmed": state.auth_confirmed,
        "auth_mode_allowed": state.auth_mode_allowed,
        "sidecar_alive": state.alive,
        "frames_valid": state.frames_valid,
        "auth_mode": state.facts.auth.mode,
    }


def capture_metrics(capture: CaptureService | None) -> dict[str, Any]:
    """The stream's counters and lag (zeros and nulls before the capture subsystem is up)."""
    m: dict[str, Any] = {
        "streamEventsAccepted": 0,
        "streamEventsDuplicates": 0,
        "streamEventsDropped": 0,
        "streamEventsReplaced": 0,
        "parserValidationErrorsTotal": 0,
        "rpcTimeoutsTotal": 0,
        "approvalTimeoutsTotal": 0,
        "restartEventsTotal": 0,
        "pendingRpcs": 0,
        "pendingApprovals": 0,
        "sidecarStderrBuffered": 0,
        "sidecarStderrDropped": 0,
        "timeSinceLastStreamEventMs": None,
        "eventLagP50Ms": None,
        "eventLagP99Ms": None,
        "unknownNotificationsByMethod": {},
    }
    if capture is None:
        return m
    counts = capture.store.counts
    m["streamEventsAccepted"] = counts.get("accepted", 0)
    m["streamEventsDuplicates"] = counts.get("duplicate", 0)
    m["streamEventsDropped"] = counts.get("dropped", 0)
    m["streamEventsReplaced"] = counts.get("replaced", 0)
    pipeline = capture.pipeline
    m["parserValidationErrorsTotal"] = pipeline.parser_errors
    m["eventLagP50Ms"], m["eventLagP99Ms"] = pipeline.lag_percentiles()
    last = pipeline.last_stream_event_at
    if last is not None:
        m["timeSinceLastStreamEventMs"] = max(0, int((time.monotonic() - last) * 1000))
    return m


def receiver_metrics(receiver: ReceiverService) -> dict[str, Any]:
    """The baseline receiver's counters and how long since its last batch."""
    c = receiver.counters
    return {
        "baselineRequestsAccepted": c.accepted,
        "baselineRequestsRejected": c.rejected,
        "baselineRecordsStored": c.records_stored,
        "baselineRecordsDuplicate": c.records_duplicate,
        "baselineRecordsRejected": c.records_rejected,
        "baselineRecordsDiscarded": c.records_discarded,
        "lastBaselineBatchAtIso": c.last_batch_at_iso,
        "timeSinceLastBaselineBatchMs": _since_iso_ms(c.last_batch_at_iso),
    }


def _since_iso_ms(value: str | None) -> int | None:
    """Milliseconds since an ISO-8601 time (None for no time or an unreadable one)."""
    then = parse_iso_ms(value) if value else None
    return None if then is None else max(0, now_ms() - then)
