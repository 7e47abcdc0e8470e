"""The status a home is in, decided from facts (pure), and its wire shape (docs/protocol.md §4.4).

| status | when |
|---|---|
| ``failed`` | the last run or rollback failed (``lastError``); or one was interrupted (journal |
|   | pending); or the state cannot be kept (``~/.agents/otel`` not a real directory, corrupt state file) |
| ``migrated`` | the last successful operation was a migration |
| ``deferred`` | the last successful operation was a rollback |
| ``not_started`` | no recorded operation, and a legacy root exists |
| ``not_needed`` | no recorded operation, and no legacy root exists (fresh install, or canonical only) |

While a run or rollback holds the lock, its journal is not an interruption:
the status stays what it was until it commits (``inProgress`` is true).

``migrationRequired``: a real run would do something. False for ``not_needed``;
true for ``not_started``; after a migration, true only when new legacy content
appeared that the merge rule would add (a re-run picks it up); after a
rollback, true while a legacy root exists.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:  # the status types stay light: the host's migration commands register with them at start
    from bridge.collector.state import MigrationState


class Status(StrEnum):
    NOT_STARTED = "not_started"
    NOT_NEEDED = "not_needed"
    MIGRATED = "migrated"
    DEFERRED = "deferred"
    FAILED = "failed"


class CollectorMigrationStatus(msgspec.Struct, rename="camel", kw_only=True):
    canonical_root: str
    legacy_root: str
    legacy_roots: list[str]
    canonical_exists: bool
    legacy_exists: bool
    migration_required: bool
    status: str
    last_attempt_at_iso: str | None
    last_error: str | None
    last_backup_path: str | None
    rollback_available: bool = False  # beyond the contract: a rollback would do something
    in_progress: bool = False  # beyond the contract: a run or rollback holds the lock right now


def interrupted_message(op: str) -> str:
    return (
        f"A collector {'migration' if op == 'migrate' else 'rollback'} was interrupted; "
        "run the migration again to complete or undo it."
    )


def decide_status(
    state: MigrationState | None,
    state_problem: str | None,
    legacy_exists: bool,
    changes_canonical: bool | None,
) -> tuple[Status, bool, str | None]:
    """``(status, migrationRequired, lastError)``; ``changes_canonical`` None means unknown (hostile tree)."""
    outcome = state.last_outcome if state else None
    required = legacy_exists and (outcome != "migrated" or changes_canonical is not False)
    if state_problem is not None:
        return Status.FAILED, required, state_problem
    if state is not None and state.journal is not None:
        return Status.FAILED, required, state.last_error or interrupted_message(state.journal.op)
    if state is not None and state.last_error is not None:
        return Status.FAILED, required, state.last_error
    if outcome == "migrated":
        return Status.MIGRATED, required, None
    if outcome == "rolled_back":
        return Status.DEFERRED, required, None
    if legacy_exists:
        return Status.NOT_STARTED, True, None
    return Status.NOT_NEEDED, False, None


# What a run or rollback did (docs/protocol.md §4.4); ``status`` is the one after it. Kept here, beside the
# status, so the host's migration commands register with light types (the service is imported on first use).
class CollectorMigrationResult(msgspec.Struct, rename="camel", kw_only=True):
    status: CollectorMigrationStatus
    migrated: bool
    rolled_back: bool
    dry_run: bool
    actions: list[str]
