"""``capture-bridge migrate [--dry-run | --rollback | --status] [--json]``.

Runs on ``$HOME``'s collector roots, independent of any data dir; the lock
keeps it from running at the same time as a bridge's migration. Exit codes:
0 done, 1 failed (-32020), 3 another migration holds the lock (-32021),
4 nothing to roll back (-32022); the reason is one line on stderr.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import msgspec

from bridge.collector.errors import MigrationError
from bridge.collector.service import CollectorMigrationService
from bridge.collector.status import CollectorMigrationResult, CollectorMigrationStatus


def configure(parser: argparse.ArgumentParser) -> None:
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="show exactly what a migration would do; write nothing")
    mode.add_argument("--rollback", action="store_true", help="restore the canonical tree the last migration replaced")
    mode.add_argument("--status", action="store_true", help="show the migration status only; write nothing")
    parser.add_argument("--json", action="store_true", help="print the result as JSON (the host command's shape)")


def _status_lines(st: CollectorMigrationStatus) -> list[str]:
    lines = [
        f"status: {st.status}" + (" (migration required)" if st.migration_required else ""),
        f"canonical root: {st.canonical_root} ({'present' if st.canonical_exists else 'absent'})",
    ]
    for i, root in enumerate(st.legacy_roots):
        lines.append(f"{'legacy roots:' if i == 0 else '':14} {root}")
    if st.last_error:
        lines.append(f"last error: {st.last_error}")
    if st.last_attempt_at_iso:
        lines.append(f"last attempt: {st.last_attempt_at_iso}")
    if st.last_backup_path:
        lines.append(f"last backup: {st.last_backup_path}")
    return lines


def _human(result: CollectorMigrationResult) -> str:
    if result.dry_run:
        head = "Collector migration plan (dry run; nothing was written):"
    elif result.rolled_back:
        head = "Collector migration rolled back:"
    elif result.migrated:
        head = "Collector migration done:"
    else:
        head = "Collector migration: nothing to do."
    steps = [f"  {i}. {a}" for i, a in enumerate(result.actions, 1)]
    return "\n".join([head, *steps, "", *_status_lines(result.status)])


def run(args: argparse.Namespace) -> int:
    service = CollectorMigrationService()
    out: Any
    try:
        if args.status:
            out = service.status()
            text = "\n".join(_status_lines(out))
        elif args.rollback:
            out = service.rollback()
            text = _human(out)
        else:
            out = service.run(dry_run=args.dry_run)
            text = _human(out)
    except MigrationError as exc:
        if args.json:
            err = {"code": exc.code, "message": exc.message, "data": {"kind": exc.kind, **exc.details}}
            sys.stdout.write(msgspec.json.encode({"error": err}).decode() + "\n")
        sys.stderr.write(f"capture-bridge migrate: {exc.message}\n")
        return exc.exit_code
    if args.json:
        sys.stdout.write(msgspec.json.encode(out).decode() + "\n")
    else:
        sys.stdout.write(text + "\n")
    return 0
