"""The collector migration API the host commands and the CLI call (blocking; run it in a thread).

Stateless: every call reads the home afresh (``$HOME`` decides it), so any
number of bridges and CLIs can use it; the lock keeps their real runs apart.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec

from bridge.clock import iso_datetime
from bridge.collector import lock
from bridge.collector.errors import Cancel, MigrationCancelled, MigrationError, MigrationFailed, NothingToRollback
from bridge.collector.execute import Executor, OperationFailed, StepHook, describe
from bridge.collector.plan import Decision, MigrationPlan, Problem, decide_run, noop_action, plan_migration
from bridge.collector.plan import rollback_actions as plan_rollback_actions
from bridge.collector.roots import Roots
from bridge.collector.scan import scan_home
from bridge.collector.snapshot import HomeSnapshot
from bridge.collector.state import MigrationState, StateUnusable, otel_dir_problem, read_state, write_state
from bridge.collector.status import CollectorMigrationResult, CollectorMigrationStatus, decide_status
from bridge.redact import redact_text

CLEAR_FAILURE = "clear the recorded failure (the tree needs no change)"


@dataclass(frozen=True)
class _Done:
    """What a locked operation did; the result's status is read after the lock is released."""

    migrated: bool
    actions: list[str]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def refusal(problems: tuple[Problem, ...]) -> MigrationFailed:
    first = problems[0].message
    more = f" ({len(problems) - 1} more: {'; '.join(p.path for p in problems[1:])})" if len(problems) > 1 else ""
    return MigrationFailed(
        redact_text(f"Collector migration refused, nothing was changed: {first}{more}"),
        problems=[{"code": p.code, "path": p.path, "message": redact_text(p.message)} for p in problems],
    )


class CollectorMigrationService:
    def __init__(
        self,
        roots: Roots | None = None,
        *,
        hook: StepHook | None = None,
        now: Callable[[], datetime] = _utcnow,
        cancelled: Callable[[], bool] | None = None,
    ) -> None:
        """``hook`` sees each step's name; ``cancelled`` is asked before the swap (True: undo and stop)."""
        self.roots = roots or Roots.of_user()
        self.hook = hook
        self.now = now
        self.executor = Executor(self.roots, hook, now, cancelled)

    # -- reading (writes nothing) -----------------------------------------------------------

    def status(self) -> CollectorMigrationStatus:
        try:
            state, problem = read_state(self.roots), None
        except StateUnusable as exc:
            state, problem = None, str(exc)
        running = lock.held(self.roots.lock_file)
        if running and state is not None and state.journal is not None:
            # Not interrupted but under way: until it commits, the previous status stands.
            state = msgspec.structs.replace(state, journal=None)
        snap = scan_home(self.roots)
        plan = plan_migration(snap, "", "")
        changes = None if plan.problems else plan.changes_canonical
        status, required, last_error = decide_status(state, problem, snap.legacy_exists, changes)
        legacy = [str(p) for p in self.roots.legacy]
        return CollectorMigrationStatus(
            canonical_root=str(self.roots.canonical),
            legacy_root=legacy[0],
            legacy_roots=legacy,
            canonical_exists=snap.canonical.exists,
            legacy_exists=snap.legacy_exists,
            migration_required=required,
            status=status.value,
            last_attempt_at_iso=state.last_attempt_at_iso if state else None,
            last_error=redact_text(last_error) if last_error else None,
            last_backup_path=state.last_backup_path if state else None,
            rollback_available=bool(state and state.rollback is not None),
            in_progress=running,
        )

    def _state(self) -> MigrationState | None:
        """The recorded state; an unusable one is a failure nobody can record (so none is)."""
        try:
            return read_state(self.roots)
        except StateUnusable as exc:
            raise MigrationFailed(redact_text(str(exc))) from exc

    def _names(self) -> tuple[str, str]:
        """A backup dir and a staging dir no earlier run used (stamped with the time)."""
        base = self.now().strftime("%Y%m%dT%H%M%SZ")
        stamp, n = base, 1
        while any(
            os.path.lexists(p)
            for p in (
                self.roots.backups / f"{stamp}-migrate",
                self.roots.backups / f"{stamp}-rollback",
                self.roots.staging(stamp),
            )
        ):
            n += 1
            stamp = f"{base}-{n}"
        return stamp, str(self.roots.staging(stamp))

    def _plan(self) -> tuple[HomeSnapshot, MigrationPlan]:
        stamp, staging = self._names()
        snap = scan_home(self.roots)
        return snap, plan_migration(snap, str(self.roots.backups / f"{stamp}-migrate"), staging)

    def _result(
        self, *, migrated: bool, rolled_back: bool, dry_run: bool, actions: list[str]
    ) -> CollectorMigrationResult:
        return CollectorMigrationResult(
            status=self.status(), migrated=migrated, rolled_back=rolled_back, dry_run=dry_run, actions=actions
        )

    def _persist_failure(self, state: MigrationState, message: str) -> None:
        failed = msgspec.structs.replace(
            state, last_error=redact_text(message), last_attempt_at_iso=iso_datetime(self.now())
        )
        # If even this cannot be written, the error still reaches the caller.
        with contextlib.suppress(OSError):
            write_state(self.roots, failed)

    def _recover(self, state: MigrationState, actions: list[str]) -> tuple[MigrationState, str | None]:
        """Complete or undo an interrupted operation; returns the op it completed, if it did."""
        journal = state.journal
        if journal is None:
            return state, None
        what = "migration" if journal.op == "migrate" else "rollback"
        try:
            state, completed = self.executor.recover(state)
        except Exception as exc:
            raise MigrationFailed(
                redact_text(
                    f"Could not recover the interrupted collector {what} ({describe(exc)}); "
                    "fix that, then run the migration again."
                )
            ) from exc
        actions.append(f"{'completed' if completed else 'undid'} the interrupted {what} of {journal.started_at_iso}")
        return state, journal.op if completed else None

    # -- run --------------------------------------------------------------------------------

    def run(self, dry_run: bool = False) -> CollectorMigrationResult:
        """Migrate (or, with ``dry_run``, say exactly what a migration would do and write nothing)."""
        if dry_run:
            return self._dry_run()
        problem = otel_dir_problem(self.roots)
        if problem is not None:
            raise MigrationFailed(redact_text(problem))
        state = self._state()
        if state is None or (state.journal is None and state.last_error is None):
            # A run with nothing to do writes nothing at all, not even the lock file.
            snap, plan = self._plan()
            decision = decide_run(snap, plan, state.last_outcome if state else None)
            if decision is not Decision.MIGRATE:
                lock.probe(self.roots.lock_file)
                return self._result(
                    migrated=False, rolled_back=False, dry_run=False, actions=[noop_action(decision, plan.canonical)]
                )
        try:
            os.makedirs(self.roots.otel_dir, mode=0o700, exist_ok=True)
        except OSError as exc:
            raise MigrationFailed(f"Cannot create {self.roots.otel_dir}: {describe(exc)}.") from exc
        with lock.MigrationLock(self.roots.lock_file):
            done = self._guarded("migration", self._run_locked)
        return self._result(migrated=done.migrated, rolled_back=False, dry_run=False, actions=done.actions)

    def _guarded(self, what: str, body: Callable[[], _Done]) -> _Done:
        """Run ``body`` under the lock; an unexpected error is recorded as ``failed`` too."""
        try:
            self.executor.step("locked")
            return body()
        except MigrationError:
            raise
        except Cancel:
            raise self._cancelled(what) from None
        except Exception as exc:
            message = redact_text(f"Collector {what} failed: {describe(exc)}. Run it again once that is fixed.")
            with contextlib.suppress(Exception):
                self._persist_failure(self._state() or MigrationState(), message)
            raise MigrationFailed(message) from exc

    def _run_locked(self) -> _Done:
        state = self._state() or MigrationState()
        actions: list[str] = []
        state, completed = self._recover(state, actions)
        snap, plan = self._plan()
        decision = decide_run(snap, plan, state.last_outcome)
        if decision is not Decision.MIGRATE:
            actions.append(noop_action(decision, plan.canonical))
            if state.last_error is not None:
                write_state(
                    self.roots,
                    msgspec.structs.replace(state, last_error=None, last_attempt_at_iso=iso_datetime(self.now())),
                )
                actions.append(CLEAR_FAILURE)
            return _Done(completed == "migrate", actions)
        if plan.problems:
            err = refusal(plan.problems)
            self._persist_failure(state, err.message)
            raise err
        undo = self._undo_point()
        try:
            self.executor.migrate(state, plan)
        except OperationFailed as exc:
            if isinstance(exc.__cause__, Cancel) and exc.state is not None:
                undo(state)
                raise self._cancelled("migration") from None
            raise self._failed("migration", exc) from exc
        return _Done(True, actions + list(plan.actions))

    def _undo_point(self) -> Callable[[MigrationState], None]:
        """What puts the bookkeeping back as it is now, after a cancelled operation was undone."""
        had_state = os.path.lexists(self.roots.state_file)
        had_backups = os.path.lexists(self.roots.backups)

        def undo(state: MigrationState) -> None:
            if had_state:
                write_state(self.roots, state)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.roots.state_file)
            if not had_backups:
                with contextlib.suppress(OSError):
                    os.rmdir(self.roots.backups)  # only if empty: the undo removed what this run made

        return undo

    def _cancelled(self, what: str) -> MigrationCancelled:
        return MigrationCancelled(f"Collector {what} cancelled; {self.roots.canonical} was left as it was.")

    def _failed(self, what: str, exc: OperationFailed) -> MigrationFailed:
        canonical = self.roots.canonical
        if exc.state is not None:
            message = f"Collector {what} failed: {exc.reason}. {canonical} was left as it was; run it again."
            self._persist_failure(exc.state, message)
        else:
            message = (
                f"Collector {what} failed: {exc.reason}. It was interrupted; "
                "the next run of the migration completes or undoes it."
            )
        return MigrationFailed(redact_text(message))

    def _dry_run(self) -> CollectorMigrationResult:
        lock.probe(self.roots.lock_file)
        problem = otel_dir_problem(self.roots)
        if problem is not None:
            raise MigrationFailed(redact_text(problem))
        state = self._state()
        actions: list[str] = []
        if state is not None and state.journal is not None:
            what = "migration" if state.journal.op == "migrate" else "rollback"
            actions.append(f"recover the interrupted {what} of {state.journal.started_at_iso} first")
        snap, plan = self._plan()
        decision = decide_run(snap, plan, state.last_outcome if state else None)
        if decision is not Decision.MIGRATE:
            actions.append(noop_action(decision, plan.canonical))
            if state is not None and state.last_error is not None:
                actions.append(CLEAR_FAILURE)
        elif plan.problems:
            raise refusal(plan.problems)
        else:
            actions += plan.actions
        return self._result(migrated=False, rolled_back=False, dry_run=True, actions=actions)

    # -- rollback ---------------------------------------------------------------------------

    def rollback(self) -> CollectorMigrationResult:
        """Restore exactly the canonical tree the last migration replaced (or its absence)."""
        problem = otel_dir_problem(self.roots)
        if problem is not None:
            raise MigrationFailed(redact_text(problem))
        state = self._state()
        if state is None or (state.rollback is None and state.journal is None):
            lock.probe(self.roots.lock_file)
            raise self._nothing()
        with lock.MigrationLock(self.roots.lock_file):
            done = self._guarded("rollback", self._rollback_locked)
        return self._result(migrated=False, rolled_back=True, dry_run=False, actions=done.actions)

    def _rollback_locked(self) -> _Done:
        state = self._state() or MigrationState()
        actions: list[str] = []
        state, completed = self._recover(state, actions)
        if completed == "rollback":
            return _Done(False, actions)
        info = state.rollback
        if info is None:
            raise self._nothing()
        stamp, staging = self._names()
        work_dir = str(self.roots.backups / f"{stamp}-rollback")
        replaced = os.path.join(work_dir, "replaced", self.roots.canonical.name)
        actions += plan_rollback_actions(
            str(self.roots.canonical),
            os.path.lexists(self.roots.canonical),
            info.restore_from if info.canonical_existed else None,
            replaced,
            staging,
        )
        undo = self._undo_point()
        try:
            self.executor.rollback(state, info, work_dir, staging)
        except OperationFailed as exc:
            if isinstance(exc.__cause__, Cancel) and exc.state is not None:
                undo(state)
                raise self._cancelled("rollback") from None
            raise self._failed("rollback", exc) from exc
        return _Done(False, actions)

    def _nothing(self) -> NothingToRollback:
        status = self.status().status
        return NothingToRollback(
            f"There is no collector migration to roll back (status {status}); nothing was changed.", status=status
        )
