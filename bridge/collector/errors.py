"""The ways a migration request can be refused (docs/protocol.md §2: -32020/-32021/-32022, and -32800 when cancelled).

They are plain exceptions so the subsystem does not import the host; the host
commands and the CLI map them to error codes and exit codes.
"""

from __future__ import annotations

from typing import Any


class MigrationError(Exception):
    """``code``/``kind`` are the host error (docs/protocol.md §2); ``details`` go into its ``data``."""

    code = -32020
    kind = "migration_failed"
    exit_code = 1

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class MigrationFailed(MigrationError):
    """The run or rollback failed (status is ``failed`` when it could be recorded)."""


class MigrationBusy(MigrationError):
    """Another migration holds the lock; nothing was changed."""

    code = -32021
    kind = "migration_busy"
    exit_code = 3


class NothingToRollback(MigrationError):
    """No migration to roll back; nothing was changed."""

    code = -32022
    kind = "nothing_to_rollback"
    exit_code = 4


class MigrationCancelled(MigrationError):
    """The caller cancelled the run or rollback before its swap; everything it did was undone."""

    code = -32800
    kind = "request_cancelled"


class Cancel(Exception):
    """Raised by a step hook to stop an operation before its swap (it is then undone)."""
