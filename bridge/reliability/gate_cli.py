"""``capture-bridge gate [--data-dir D] [--json] [--window-hours H] [--stable-seconds S]``.

The runbook's Go / No-Go over a data dir's recorded history, with the same
rule as the ``get_release_gate`` command (:mod:`bridge.reliability.gate`). It
works whether or not a bridge is running there: it only reads (see
:mod:`bridge.reliability.offline`). Exit 0 Go, 1 No-Go, 2 when the data dir
cannot be read (the reason on stderr).
"""

from __future__ import annotations

import argparse
import sys

import msgspec

from bridge.config.paths import DataDir, resolve_data_dir
from bridge.reliability.offline import Unreadable, offline_gate


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="the bridge's data dir (default: $CAPTURE_BRIDGE_HOME or the user data dir)")
    parser.add_argument("--json", action="store_true", help="print the get_release_gate result as JSON")
    parser.add_argument("--window-hours", type=float, default=24.0, help="history window to judge (default 24)")
    parser.add_argument(
        "--stable-seconds", type=float, default=10.0, help="how long the current mode must have held (default 10)"
    )


def run(args: argparse.Namespace) -> int:
    if args.window_hours <= 0 or args.stable_seconds < 0:
        sys.stderr.write("capture-bridge gate: --window-hours must be > 0 and --stable-seconds >= 0\n")
        return 2
    data_dir = DataDir(resolve_data_dir(args.data_dir))
    try:
        result, recorded = offline_gate(data_dir, args.window_hours, args.stable_seconds)
    except Unreadable as exc:
        sys.stderr.write(f"capture-bridge gate: {exc}\n")
        return 2
    if args.json:
        sys.stdout.write(msgspec.json.encode(result).decode() + "\n")
    else:
        where = f"bridge running, pid {recorded.pid}" if recorded.pid else "no bridge running; recorded history"
        verdict = "GO" if result.verdict == "go" else "NO-GO"
        lines = [f"{verdict}  ({data_dir.root}; last {result.window_hours:g} h; {where})", ""]
        width = max(len(c.name) for c in result.checks)
        for check in result.checks:
            lines.append(f"  {'ok  ' if check.ok else 'FAIL'}  {check.name:<{width}}  {check.detail}")
        sys.stdout.write("\n".join(lines) + "\n")
    if result.verdict != "go":
        failed = ", ".join(c.name for c in result.checks if not c.ok)
        sys.stderr.write(f"capture-bridge gate: No-Go ({failed})\n")
        return 1
    return 0
