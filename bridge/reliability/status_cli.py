"""``capture-bridge status [--data-dir D] [--json]``: a data dir's capture reliability, for a person.

Reads only (see :mod:`bridge.reliability.offline` for what it can and cannot
know without talking to the bridge). Exit 0 when it could read the data dir,
1 when there is no data dir, 2 when its store cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import msgspec

from bridge.clock import now_ms, parse_iso_ms
from bridge.config.paths import DataDir, resolve_data_dir
from bridge.reliability.offline import Unreadable, offline_status


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="the bridge's data dir (default: $CAPTURE_BRIDGE_HOME or the user data dir)")
    parser.add_argument("--json", action="store_true", help="print the status as JSON")
    parser.add_argument("--window-hours", type=float, default=24.0, help="how far back to list events (default 24)")


def _ago(iso: str | None) -> str:
    if not iso:
        return ""
    then = parse_iso_ms(iso)
    if then is None:
        return ""
    s = max(0, (now_ms() - then) // 1000)
    if s < 60:
        return f"{s} s ago"
    if s < 3600:
        return f"{s // 60} min {s % 60} s ago"
    if s < 86400:
        return f"{s // 3600} h {(s % 3600) // 60} min ago"
    return f"{s // 86400} d {(s % 86400) // 3600} h ago"


def _yes(value: Any) -> str:
    return "unknown" if value is None else ("yes" if value else "no")


def render(st: dict[str, Any]) -> str:
    lines = [f"capture-bridge status: {st['dataDir']}"]
    if st["bridgeRunning"]:
        lines.append(f"bridge:     running (pid {st['pid']})")
    elif st.get("stoppedAtIso"):
        lines.append(f"bridge:     not running (stopped {st['stoppedAtIso']}, {_ago(st['stoppedAtIso'])})")
    else:
        lines.append("bridge:     not running")
    if st["mode"] is None:
        lines.append("mode:       none recorded (no bridge has run on this data dir yet)")
    else:
        note = "" if st["bridgeRunning"] else "  [last recorded]"
        lines.append(f"mode:       {st['mode']} since {st['modeSinceIso']} ({_ago(st['modeSinceIso'])}){note}")
        lines.append(
            f"            baseline healthy: {_yes(st['otelBaselineHealthy'])}, stream expected: "
            f"{_yes(st['streamExpected'])}, stream healthy: {_yes(st['streamHealthy'])}"
        )
    for i, reason in enumerate(st["reasons"]):
        lines.append(f"{'why:' if i == 0 else '':12}{reason}")
    cfg = st.get("config")
    if cfg is None:
        lines.append("config:     config.json is invalid (the bridge would refuse to start)")
    else:
        lines.append("config:     " + ", ".join(f"{k}={json.dumps(v)}" for k, v in cfg.items()))
    receiver = st.get("receiver")
    if receiver:
        lines.append(f"receiver:   {receiver.get('state')} {receiver.get('endpoint') or ''}".rstrip())
    mig = st["migration"]
    lines.append(
        f"migration:  {mig['status'] or 'unreadable'}" + (f" ({mig['lastError']})" if mig["lastError"] else "")
    )
    m = st["metrics"]
    lines.append(
        f"dedup log:  accepted {m['decisionLogAccepted']}, duplicate {m['decisionLogDuplicates']}, "
        f"replaced {m['decisionLogReplaced']}, dropped {m['decisionLogDropped']}"
    )
    last_otel = m["lastBaselineRecordAtIso"]
    lines.append(f"baseline:   last OTEL record {last_otel + ' (' + _ago(last_otel) + ')' if last_otel else 'never'}")
    events = [e for e in st["events"] if e["kind"] in ("crash_loop", "sidecar_exit")]
    lines.append(f"sidecar:    {len(events)} crash_loop / unexpected exit event(s) in the last {st['windowHours']:g} h")
    for e in events[-5:]:
        lines.append(f"            {e['atIso']}  {e['kind']}  {e['detail']}")
    if st["transitions"]:
        lines.append("transitions (newest first):")
        for t in st["transitions"][:10]:
            lines.append(f"  {t['atIso']}  {t['fromMode'] or '(start)'} -> {t['toMode']}  {t['reason']}")
        if len(st["transitions"]) > 10:
            lines.append(f"  ... {len(st['transitions']) - 10} more (--json lists up to 100)")
    if not st["bridgeRunning"]:
        lines.append("note: no bridge is running here, so this is the recorded history, not live facts.")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    data_dir = DataDir(resolve_data_dir(args.data_dir))
    if not data_dir.root.is_dir():
        sys.stderr.write(f"capture-bridge status: no capture-bridge data dir at {data_dir.root}\n")
        return 1
    try:
        status = offline_status(data_dir, args.window_hours)
    except Unreadable as exc:
        sys.stderr.write(f"capture-bridge status: {exc}\n")
        return 2
    if args.json:
        sys.stdout.write(msgspec.json.encode(status).decode() + "\n")
    else:
        sys.stdout.write(render(status) + "\n")
    return 0
