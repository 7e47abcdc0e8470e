"""The migration's state file ``~/.agents/otel/.collector-migration.json``.

It belongs to the home, not to a data dir, so every bridge and the CLI see the
same record. Only a run or a rollback writes it (atomically: temp file, fsync,
rename, fsync of the directory); reading never creates anything. While a run
is between steps it carries a :class:`Journal`, so the next run can complete
or undo an interrupted one.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from typing import Literal

import msgspec

from bridge.collector import fsops
from bridge.collector.roots import Roots

Outcome = Literal["migrated", "rolled_back"]


class Journal(msgspec.Struct, rename="camel", kw_only=True):
    """An operation in progress; see execute.py for how each phase is recovered."""

    op: Literal["migrate", "rollback"]
    phase: Literal["prepare", "swap"]
    started_at_iso: str
    staging: str
    work_dir: str  # the backup dir (migrate) or rollback snapshot dir (rollback)
    aside: str  # where the current canonical tree is moved
    canonical_existed: bool  # the canonical root existed before this operation
    target_absent: bool = False  # rollback to "the canonical root did not exist"
    staging_id: list[int] | None = None  # (st_dev, st_ino) of the staged tree
    restore_existed: bool = False  # migrate: what a later rollback restores


class RollbackInfo(msgspec.Struct, rename="camel", kw_only=True):
    """What the last migration replaced, so a rollback can restore it exactly."""

    backup_path: str
    canonical_existed: bool
    restore_from: str | None  # the pre-migration canonical tree inside the backup
    migrated_at_iso: str


class MigrationState(msgspec.Struct, rename="camel", kw_only=True):
    version: int = 1
    last_outcome: Outcome | None = None
    last_attempt_at_iso: str | None = None
    last_error: str | None = None
    last_backup_path: str | None = None
    migrated_at_iso: str | None = None
    rolled_back_at_iso: str | None = None
    rollback: RollbackInfo | None = None
    journal: Journal | None = None


_decoder = msgspec.json.Decoder(MigrationState)


class StateUnusable(Exception):
    """The state file or its directory cannot be trusted; the message says what to do."""


def otel_dir_problem(roots: Roots) -> str | None:
    """Why ``~/.agents`` or ``~/.agents/otel`` cannot hold the state (None when fine or absent)."""
    for path in (roots.otel_dir.parent, roots.otel_dir):
        try:
            mode = os.lstat(path).st_mode
        except (FileNotFoundError, NotADirectoryError):
            return None
        if stat.S_ISLNK(mode):
            return (
                f"{path} is a symlink; the migration keeps its state and backups only in a real directory. "
                "Replace the link with the directory it points to, then run the migration again."
            )
        if not stat.S_ISDIR(mode):
            return f"{path} is a file where a directory is expected; move it away, then run the migration again."
    return None


def read_state(roots: Roots) -> MigrationState | None:
    """The recorded state, None when there is none. Raises StateUnusable."""
    problem = otel_dir_problem(roots)
    if problem is not None:
        raise StateUnusable(problem)
    path = roots.state_file
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise StateUnusable(
            f"{path} cannot be read ({exc.strerror}); fix it or move it aside, then run the migration again."
        ) from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise StateUnusable(f"{path} is not a regular file; move it aside, then run the migration again.")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            raw = fh.read()
    finally:
        os.close(fd)
    try:
        return _decoder.decode(raw)
    except msgspec.DecodeError as exc:
        raise StateUnusable(
            f"{path} is not a valid migration state file ({exc}); move it aside, then run the migration again."
        ) from exc


def write_state(roots: Roots, state: MigrationState) -> None:
    directory = roots.otel_dir
    data = msgspec.json.format(msgspec.json.encode(state), indent=2) + b"\n"
    fd, tmp = tempfile.mkstemp(prefix=".collector-migration.", suffix=".tmp", dir=directory)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, roots.state_file)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsops.fsync_dir(directory)
