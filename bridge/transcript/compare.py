"""Comparing a replay with its recording: what differs between any two runs is left out first.

Pure: the replay (:mod:`bridge.transcript.replay`) and the fixture tests use it to say where a
replayed answer first departs from the recorded one.
"""

from __future__ import annotations

import re
from typing import Any

# Answer fields that differ between any two runs (clock, process, temp dir, secrets' stand-ins).
VOLATILE_KEYS = frozenset(
    {
        "updatedAtIso", "atIso", "receivedAtIso", "lastTransitionAtIso", "decidedAtIso", "occurredAtIso",
        "lastBatchAtIso", "lastAttemptAtIso", "pid", "dataDir", "decisionToken", "endpoint", "path", "seq",
        "metrics", "timeSinceLastStreamEventMs", "lastBackupPath", "canonicalRoot", "legacyRoot", "legacyRoots",
        "restartAttemptsInWindow", "requestId", "runId",
    }
)  # fmt: skip
# Lists that grow between releases like answers' fields do: a replay must still hold every recorded
# entry, in any order, and may hold more (``bridge_info`` lists the commands of the bridge that runs).
GROWING_LISTS = frozenset({"commands"})
_PID_RE = re.compile(r"\bpid \d+")
_DELAY_RE = re.compile(r"\b\d+\.\d+ s\b")


def normalise(value: Any, drop: frozenset[str] = VOLATILE_KEYS) -> Any:
    """``value`` without run-specific fields; pids and delays in messages are masked."""
    if isinstance(value, dict):
        return {k: normalise(v, drop) for k, v in value.items() if k not in drop}
    if isinstance(value, list):
        return [normalise(v, drop) for v in value]
    if isinstance(value, str):
        return _DELAY_RE.sub("N s", _PID_RE.sub("pid N", value))
    return value


def first_difference(recorded: Any, replayed: Any, where: str = "") -> tuple[str, Any, Any] | None:
    """The first place (a JSON path) where two values differ, with both values there.

    A field only the replayed answer has is no difference: answers may grow new fields
    (docs/protocol.md: shapes grow, never shrink), so an older transcript still compares.
    """
    if isinstance(recorded, dict) and isinstance(replayed, dict):
        for key in sorted(recorded, key=str):
            if key not in replayed:
                return f"{where}.{key}", recorded[key], "<absent>"
            if key in GROWING_LISTS and isinstance(recorded[key], list) and isinstance(replayed[key], list):
                missing = [entry for entry in recorded[key] if entry not in replayed[key]]
                if missing:
                    return f"{where}.{key}", missing[0], "<absent>"
                continue
            found = first_difference(recorded[key], replayed[key], f"{where}.{key}")
            if found is not None:
                return found
        return None
    if isinstance(recorded, list) and isinstance(replayed, list):
        for index, (a, b) in enumerate(zip(recorded, replayed, strict=False)):
            found = first_difference(a, b, f"{where}[{index}]")
            if found is not None:
                return found
        if len(recorded) != len(replayed):
            return f"{where}.length", len(recorded), len(replayed)
        return None
    if recorded != replayed:
        return where or ".", recorded, replayed
    return None
