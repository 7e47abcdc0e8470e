"""Capture reliability commands (docs/protocol.md §3.6, §4.3)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from bridge import errors
from bridge.host.app import App
from bridge.host.registry import NoParams, Params, command
from bridge.reliability.gate import ReleaseGate
from bridge.reliability.service import ReliabilityService
from bridge.reliability.view import CaptureReliabilityStatus


class ReleaseGateParams(Params):
    window_hours: Annotated[float, msgspec.Meta(gt=0, le=24 * 366)] = 24
    stable_seconds: Annotated[float, msgspec.Meta(ge=0, le=86_400)] = 10


def _reliability(app: App) -> ReliabilityService:
    if app.reliability is None:
        raise errors.BridgeError(
            errors.OVERLOADED,
            "Capture reliability is not up (the bridge is starting or stopping); retry in a moment.",
        )
    return app.reliability


@command("get_capture_reliability_status", result=CaptureReliabilityStatus)
async def get_capture_reliability_status(app: App, params: NoParams) -> CaptureReliabilityStatus:
    """Mode, facts, reasons, metrics, the last 100 transitions and the sidecar status (a pure read)."""
    return _reliability(app).status()


@command("get_release_gate", params=ReleaseGateParams, result=ReleaseGate)
async def get_release_gate(app: App, params: ReleaseGateParams) -> ReleaseGate:
    """The runbook's Go / No-Go over the recorded window (the same rule as ``capture-bridge gate``)."""
    return await _reliability(app).release_gate(params.window_hours, params.stable_seconds)
