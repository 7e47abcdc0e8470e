"""The runbook's Go / No-Go as a pure function of recorded history (docs/protocol.md §3.6).

| check | passes when |
|---|---|
| ``no_failure_in_window`` | no ``FAILURE`` in the window (neither entered in it nor in effect as it opened) |
| ``no_crash_loop_in_window`` | the sidecar never entered ``crash_loop`` in the window |
| ``migration_status`` | ``migrated``, ``deferred`` or ``not_needed`` (``failed``, ``not_started`` fail) |
| ``mode_stable`` | the mode is ``HYBRID_ACTIVE`` or ``OTEL_ONLY``, unchanged for ``stableSeconds`` |
| ``dedup_deterministic`` | replaying the logged dedup decisions' inputs gives the same decisions |

The verdict is ``go`` only when every check passes. The bridge command and the
``capture-bridge gate`` CLI both build :class:`GateInputs` and call
:func:`evaluate_gate`, so they cannot disagree about the rule.
"""

from __future__ import annotations

import msgspec

from bridge.clock import iso_ms
from bridge.reliability.history import Event, Transition
from bridge.reliability.mode import FAILURE, HYBRID_ACTIVE, OTEL_ONLY

GO_MODES = (HYBRID_ACTIVE, OTEL_ONLY)
GOOD_MIGRATION = ("migrated", "deferred", "not_needed")


class GateCheck(msgspec.Struct, kw_only=True):
    name: str
    ok: bool
    detail: str


class ReleaseGate(msgspec.Struct, rename="camel", kw_only=True):
    verdict: str  # "go" | "no_go"
    window_hours: float
    checks: list[GateCheck]


class GateInputs(msgspec.Struct, frozen=True):
    now_ms: int
    window_hours: float
    stable_seconds: float
    mode_at_window_start: str | None
    transitions: tuple[Transition, ...]  # inside the window, oldest first
    crash_loops: tuple[Event, ...]  # inside the window
    current_mode: str | None  # None: no mode ever recorded
    current_since_ms: int | None  # when the current mode began
    live: bool  # a bridge is running (else the current mode is the last one recorded)
    stopped_at_ms: int | None  # not live: when that bridge recorded its stop
    migration_status: str | None  # None: could not be read
    migration_error: str | None
    dedup: tuple[bool, int, str]  # (deterministic, decisions replayed, first difference)

    @property
    def window_start_ms(self) -> int:
        return self.now_ms - int(self.window_hours * 3_600_000)


def _failure(i: GateInputs) -> GateCheck:
    entered = [t for t in i.transitions if t.to_mode == FAILURE]
    if i.mode_at_window_start == FAILURE:
        detail = "the mode was already FAILURE when the window opened"
        if entered:
            detail += f", and FAILURE was entered {len(entered)} more time(s)"
        return GateCheck(name="no_failure_in_window", ok=False, detail=detail + ".")
    if entered:
        last = entered[-1]
        return GateCheck(
            name="no_failure_in_window",
            ok=False,
            detail=f"FAILURE was entered {len(entered)} time(s) in the window, "
            f"last at {iso_ms(last.at_ms)}: {last.reason}",
        )
    return GateCheck(name="no_failure_in_window", ok=True, detail=f"no FAILURE in the last {i.window_hours:g} h.")


def _crash_loop(i: GateInputs) -> GateCheck:
    if i.crash_loops:
        last = i.crash_loops[-1]
        return GateCheck(
            name="no_crash_loop_in_window",
            ok=False,
            detail=f"codex app-server entered crash_loop {len(i.crash_loops)} time(s) in the window, "
            f"last at {iso_ms(last.at_ms)}: {last.detail}",
        )
    return GateCheck(name="no_crash_loop_in_window", ok=True, detail=f"no crash_loop in the last {i.window_hours:g} h.")


def _migration(i: GateInputs) -> GateCheck:
    status = i.migration_status
    if status is None:
        why = f": {i.migration_error}" if i.migration_error else ""
        return GateCheck(name="migration_status", ok=False, detail=f"the migration status could not be read{why}.")
    if status in GOOD_MIGRATION:
        return GateCheck(name="migration_status", ok=True, detail=f"migration status is {status}.")
    if status == "failed":
        why = f": {i.migration_error}" if i.migration_error else ""
        return GateCheck(name="migration_status", ok=False, detail=f"migration status is failed{why}.")
    return GateCheck(
        name="migration_status",
        ok=False,
        detail=f"migration status is {status}; run the collector migration (dry run first) "
        "before widening the release.",
    )


def _stable(i: GateInputs) -> GateCheck:
    mode = i.current_mode
    if mode is None or i.current_since_ms is None:
        return GateCheck(
            name="mode_stable", ok=False, detail="no capture mode was ever recorded in this data dir; run the bridge."
        )
    end = i.now_ms if i.live or i.stopped_at_ms is None else i.stopped_at_ms
    held_s = max(0, end - i.current_since_ms) / 1000
    where = "" if i.live else " (last recorded; no bridge is running on this data dir)"
    if mode not in GO_MODES:
        return GateCheck(
            name="mode_stable",
            ok=False,
            detail=f"the mode is {mode}{where}; Go needs {HYBRID_ACTIVE} or {OTEL_ONLY}.",
        )
    if held_s < i.stable_seconds:
        return GateCheck(
            name="mode_stable",
            ok=False,
            detail=f"the mode is {mode}{where} but changed {held_s:.1f} s ago; it must hold for "
            f"{i.stable_seconds:g} s.",
        )
    return GateCheck(name="mode_stable", ok=True, detail=f"the mode is {mode}{where}, unchanged for {held_s:.1f} s.")


def _dedup(i: GateInputs) -> GateCheck:
    ok, count, difference = i.dedup
    if not ok:
        return GateCheck(
            name="dedup_deterministic", ok=False, detail=f"dedup decisions are not deterministic: {difference}"
        )
    return GateCheck(
        name="dedup_deterministic",
        ok=True,
        detail=f"replaying the inputs of {count} logged dedup decision(s) in the window gives the same decisions.",
    )


def evaluate_gate(i: GateInputs) -> ReleaseGate:
    checks = [_failure(i), _crash_loop(i), _migration(i), _stable(i), _dedup(i)]
    verdict = "go" if all(c.ok for c in checks) else "no_go"
    return ReleaseGate(verdict=verdict, window_hours=i.window_hours, checks=checks)
