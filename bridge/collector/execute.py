"""Doing a planned migration or a rollback: backup, staging, atomic swap, journal.

Crash safety. Every operation writes a journal into the state file before it
touches anything, and follows the same steps:

1. ``prepare``: journal written; the backup (or rollback snapshot) dir and a
   staging dir beside the canonical root are filled with verified copies.
   Nothing the user owns has moved yet.
2. ``swap``: the journal records the staged tree's identity (device, inode),
   then the staged tree replaces the canonical root. Where the OS can
   (Linux ``renameat2(RENAME_EXCHANGE)``, macOS ``renamex_np(RENAME_SWAP)``)
   this is one atomic exchange; the old tree then moves into the backup.
   Elsewhere it is two renames (old tree into the backup, staged tree in).
   With no canonical root before, it is one atomic rename.
3. The state is written with the outcome and without the journal.

An interrupted operation is recovered by the next run or rollback (under the
lock): if the canonical root is already the staged tree (same identity), the
operation is completed; otherwise it is undone (the old tree moved back if
the two-rename fallback had moved it, the staging dir and the incomplete
backup removed — they hold only copies). So the canonical root is always the
old tree or the new one; only with the two-rename fallback is there an instant
where it is absent, and the journal restores it. A step hook lets tests raise
or exit between named steps.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path

import msgspec

from bridge.clock import iso_datetime
from bridge.collector import fsops
from bridge.collector.errors import Cancel
from bridge.collector.plan import MigrationPlan
from bridge.collector.roots import Roots
from bridge.collector.scan import scan_tree
from bridge.collector.snapshot import Entry, Kind
from bridge.collector.state import Journal, MigrationState, RollbackInfo, write_state

StepHook = Callable[[str], None]
# The steps after which a cancelled operation stops (it is then undone); from the swap on it completes.
CANCELLABLE = frozenset({"locked", "journaled", "backed_up", "staged"})


def describe(exc: BaseException) -> str:
    """An operator-readable reason for a failed step."""
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        if exc.errno == errno.ENOSPC:
            return f"no space left on the device{where}; free some space"
        if exc.errno in (errno.EACCES, errno.EPERM):
            return f"permission denied{where}; fix the permissions"
        return f"{exc.strerror or exc}{where}"
    return str(exc) or type(exc).__name__


def _go_on() -> None:
    """The default between two copies: nothing stops a copy."""


def materialize(
    dest: str, root_mode: int, items: Iterable[tuple[str, Entry]], between: Callable[[], None] = _go_on
) -> None:
    """Build ``dest`` from ``(source path, entry)`` pairs (parents first), each copy verified.

    ``between()`` runs before each entry: a cancel raised there stops a large
    copy at once rather than at the step after it (the caller undoes ``dest``).
    """
    os.mkdir(dest, 0o700)
    dirs: list[tuple[str, int]] = [(dest, root_mode)]
    for source, entry in items:
        between()
        target = os.path.join(dest, entry.rel)
        if entry.kind is Kind.DIR:
            os.mkdir(target, 0o700)
            dirs.append((target, entry.mode))
        elif entry.kind is Kind.SYMLINK:
            if os.readlink(source) != entry.target:
                raise fsops.ChangedDuringCopy(errno.EIO, "symlink changed during the migration", source)
            os.symlink(entry.target or "", target)
        elif entry.kind is Kind.FILE:
            fsops.copy_file(source, target, entry.digest, entry.mode)
        else:
            raise OSError(errno.EINVAL, "not a file, directory or symlink", source)
    # Children first, so a read-only directory mode does not block its own fill.
    for path, mode in reversed(dirs):
        fsops.fsync_dir(path)
        os.chmod(path, mode)


class Executor:
    def __init__(
        self,
        roots: Roots,
        hook: StepHook | None,
        now: Callable[[], datetime],
        cancelled: Callable[[], bool] | None = None,
    ) -> None:
        self.roots = roots
        self.hook = hook
        self.now = now
        self.cancelled = cancelled

    def step(self, name: str) -> None:
        if self.hook is not None:
            self.hook(name)
        if self.cancelled is not None and name in CANCELLABLE and self.cancelled():
            raise Cancel(name)

    def _while(self, doing: str) -> Callable[[], None]:
        """A check for inside a long step: stop now when the operation was cancelled."""

        def check() -> None:
            if self.cancelled is not None and self.cancelled():
                raise Cancel(doing)

        return check

    def _write(self, state: MigrationState) -> None:
        write_state(self.roots, state)

    # -- the swap shared by migrate and rollback ---------------------------------------------

    def _swap_in(self, staging: str, aside: str, canonical_exists: bool) -> None:
        canonical = str(self.roots.canonical)
        if not canonical_exists:
            os.rename(staging, canonical)
            self.step("renamed")
            return
        os.makedirs(os.path.dirname(aside), mode=0o700, exist_ok=True)
        if fsops.exchange(staging, canonical):
            self.step("exchanged")
            os.rename(staging, aside)
            self.step("moved_aside")
        else:
            os.rename(canonical, aside)
            self.step("moved_aside")
            os.rename(staging, canonical)
            self.step("renamed")

    # -- migrate ----------------------------------------------------------------------------

    def migrate(self, state: MigrationState, plan: MigrationPlan) -> MigrationState:
        started = iso_datetime(self.now())
        journal = Journal(
            op="migrate",
            phase="prepare",
            started_at_iso=started,
            staging=plan.staging_dir,
            work_dir=plan.backup_dir,
            aside=plan.canonical_aside,
            canonical_existed=plan.canonical_exists,
        )
        return self._run(state, journal, lambda j: self._migrate_steps(j, plan))

    def _migrate_steps(self, journal: Journal, plan: MigrationPlan) -> Journal:
        os.makedirs(self.roots.backups, mode=0o700, exist_ok=True)
        os.mkdir(plan.backup_dir, 0o700)
        os.mkdir(os.path.join(plan.backup_dir, "legacy"), 0o700)
        for b in plan.backups:
            entries = ((os.path.join(b.root.path, e.rel), e) for e in b.root.entries)
            materialize(b.dest, b.root.mode, entries, self._while("backing_up"))
        manifest = {
            "op": "migrate",
            "startedAtIso": journal.started_at_iso,
            "canonicalRoot": plan.canonical,
            "canonicalExisted": plan.canonical_exists,
            "canonicalBackup": plan.canonical_aside if plan.canonical_exists else None,
            "legacyBackups": {b.root.path: b.dest for b in plan.backups},
            "conflicts": [{"path": c.rel, "kept": c.winner, "notKept": list(c.losers)} for c in plan.conflicts],
            "actions": list(plan.actions),
        }
        _write_manifest(plan.backup_dir, manifest)
        fsops.fsync_dir(plan.backup_dir)
        self.step("backed_up")
        materialize(plan.staging_dir, plan.root_mode, ((p.source, p.entry) for p in plan.tree), self._while("staging"))
        fsops.fsync_dir(self.roots.otel_dir)
        self.step("staged")
        return journal

    # -- rollback ---------------------------------------------------------------------------

    def rollback(self, state: MigrationState, info: RollbackInfo, work_dir: str, staging: str) -> MigrationState:
        canonical_exists = os.path.lexists(self.roots.canonical)
        journal = Journal(
            op="rollback",
            phase="prepare",
            started_at_iso=iso_datetime(self.now()),
            staging=staging,
            work_dir=work_dir,
            aside=os.path.join(work_dir, "replaced", self.roots.canonical.name),
            canonical_existed=canonical_exists,
            target_absent=not info.canonical_existed,
        )
        return self._run(state, journal, lambda j: self._rollback_steps(j, info))

    def _rollback_steps(self, journal: Journal, info: RollbackInfo) -> Journal:
        os.makedirs(self.roots.backups, mode=0o700, exist_ok=True)
        os.mkdir(journal.work_dir, 0o700)
        _write_manifest(
            journal.work_dir,
            {
                "op": "rollback",
                "startedAtIso": journal.started_at_iso,
                "canonicalRoot": str(self.roots.canonical),
                "restoredFrom": info.restore_from,
                "replacedTree": journal.aside if journal.canonical_existed else None,
                "migrationBackup": info.backup_path,
            },
        )
        if info.restore_from is not None:
            if not _inside(info.restore_from, str(self.roots.backups)):
                raise OSError(errno.EINVAL, "the recorded backup is not inside the backup directory", info.restore_from)
            snap = scan_tree(Path(info.restore_from))
            bad = [e.rel for e in snap.entries if e.error is not None] + ([snap.path] if snap.error else [])
            if snap.kind is not Kind.DIR or bad:
                raise OSError(
                    errno.EIO,
                    "the backup of the pre-migration tree is missing or unreadable"
                    + (f" ({', '.join(bad)})" if bad else ""),
                    info.restore_from,
                )
            entries = ((os.path.join(info.restore_from, e.rel), e) for e in snap.entries)
            materialize(journal.staging, snap.mode, entries, self._while("staging"))
            fsops.fsync_dir(self.roots.otel_dir)
            self.step("staged")
        return journal

    # -- the common frame: journal, steps, swap, commit; failures recovered ----------------

    def _run(self, state: MigrationState, journal: Journal, prepare: Callable[[Journal], Journal]) -> MigrationState:
        for mine in (journal.staging, journal.work_dir):
            # Undoing removes these, so they must be new (names are unique per run, under the lock).
            if os.path.lexists(mine):
                raise OperationFailed(f"{mine} already exists; move it away, then run the migration again", state)
        working = msgspec.structs.replace(state, journal=journal, last_attempt_at_iso=journal.started_at_iso)
        try:
            os.makedirs(self.roots.otel_dir, mode=0o700, exist_ok=True)
            self._write(working)
            self.step("journaled")
            journal = prepare(journal)
            staged = os.path.lexists(journal.staging)
            ident = fsops.identity(journal.staging) if staged else None
            journal = msgspec.structs.replace(journal, phase="swap", staging_id=list(ident) if ident else None)
            working = msgspec.structs.replace(working, journal=journal)
            self._write(working)
            self.step("journaled_swap")
            if staged:
                self._swap_in(journal.staging, journal.aside, journal.canonical_existed)
            elif journal.canonical_existed:  # rollback to "did not exist"
                os.makedirs(os.path.dirname(journal.aside), mode=0o700, exist_ok=True)
                os.rename(self.roots.canonical, journal.aside)
                self.step("moved_aside")
            fsops.fsync_dir(self.roots.otel_dir)
            done = self._finish(working, journal)
            self.step("committed")
            return done
        except Exception as exc:
            failure = describe(exc)
            try:
                recovered, completed = self.recover(working)
            except Exception as again:
                # The journal stays; the next run completes or undoes it.
                raise OperationFailed(f"{failure}; cleaning up also failed ({describe(again)})", state=None) from exc
            if completed:
                return recovered
            raise OperationFailed(failure, state=recovered) from exc

    def _finish(self, state: MigrationState, journal: Journal) -> MigrationState:
        now = iso_datetime(self.now())
        if journal.op == "migrate":
            done = msgspec.structs.replace(
                state,
                last_outcome="migrated",
                last_error=None,
                last_attempt_at_iso=journal.started_at_iso,
                last_backup_path=journal.work_dir,
                migrated_at_iso=now,
                rollback=RollbackInfo(
                    backup_path=journal.work_dir,
                    canonical_existed=journal.canonical_existed,
                    restore_from=journal.aside if journal.canonical_existed else None,
                    migrated_at_iso=now,
                ),
                journal=None,
            )
        else:
            done = msgspec.structs.replace(
                state,
                last_outcome="rolled_back",
                last_error=None,
                last_attempt_at_iso=journal.started_at_iso,
                last_backup_path=journal.work_dir,
                rolled_back_at_iso=now,
                rollback=None,
                journal=None,
            )
        self._write(done)
        return done

    # -- recovery ---------------------------------------------------------------------------

    def recover(self, state: MigrationState) -> tuple[MigrationState, bool]:
        """Complete or undo the journaled operation; ``(new state, completed?)``. Idempotent."""
        journal = state.journal
        if journal is None:
            return state, False
        self._check_journal(journal)
        canonical = self.roots.canonical
        if journal.phase == "swap":
            if journal.target_absent:
                done = not os.path.lexists(canonical)
            else:
                ident = fsops.identity(canonical)
                done = ident is not None and journal.staging_id is not None and list(ident) == journal.staging_id
            if done:
                if not journal.target_absent and journal.canonical_existed and os.path.lexists(journal.staging):
                    # Exchanged but not yet moved: the old tree is at the staging path.
                    os.makedirs(os.path.dirname(journal.aside), mode=0o700, exist_ok=True)
                    os.rename(journal.staging, journal.aside)
                fsops.fsync_dir(self.roots.otel_dir)
                return self._finish(state, journal), True
            if journal.canonical_existed and not os.path.lexists(canonical) and os.path.lexists(journal.aside):
                os.rename(journal.aside, canonical)  # undo the first of the two renames
                fsops.fsync_dir(self.roots.otel_dir)
        self._discard(journal)
        undone = msgspec.structs.replace(state, journal=None)
        self._write(undone)
        return undone, False

    def _check_journal(self, journal: Journal) -> None:
        """Recovery removes and renames what the journal names: only the migration's own paths."""
        staging_ok = _child_of(journal.staging, str(self.roots.otel_dir)) and os.path.basename(
            journal.staging
        ).startswith(".collector-staging-")
        work_ok = _child_of(journal.work_dir, str(self.roots.backups))
        aside_ok = _inside(journal.aside, journal.work_dir) and journal.aside != journal.work_dir
        if not (staging_ok and work_ok and aside_ok):
            raise ValueError(
                f"the journal in {self.roots.state_file} names paths outside the migration's own directories; "
                "move the state file aside and check the collector roots by hand"
            )

    def _discard(self, journal: Journal) -> None:
        """Remove what an undone operation made: copies only (guarded)."""
        fsops.remove_tree(journal.staging)
        if os.path.lexists(journal.aside):
            # Never delete a directory holding a canonical tree that was moved aside.
            return
        fsops.remove_tree(journal.work_dir)
        if os.path.isdir(os.path.dirname(journal.work_dir)):
            fsops.fsync_dir(os.path.dirname(journal.work_dir))


class OperationFailed(Exception):
    """A step failed; ``state`` is the state after undoing it (None: journal left for the next run)."""

    def __init__(self, reason: str, state: MigrationState | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.state = state


def _write_manifest(directory: str, data: dict[str, object]) -> None:
    path = os.path.join(directory, "manifest.json")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(msgspec.json.format(msgspec.json.encode(data), indent=2) + b"\n")
        fh.flush()
        os.fsync(fh.fileno())


def _inside(path: str, base: str) -> bool:
    """``path`` is ``base`` or below it, written without ``..`` detours."""
    return os.path.normpath(path) == path and (path == base or path.startswith(base.rstrip("/") + "/"))


def _child_of(path: str, parent: str) -> bool:
    return os.path.normpath(path) == path and os.path.dirname(path) == parent
