"""Collector migration commands (docs/protocol.md §3.8, §4.4).

The service is stateless and blocking, so each call builds one on ``$HOME``
and runs it in a worker thread; the migration lock, not the bridge, keeps
concurrent runs (other bridges, the CLI) apart. A run or rollback reports its
steps as work-done progress and stops before its next file or step (never past
the swap) when the host cancels it (docs/protocol.md §1.1): the service then
undoes it.

The service (the planner, the executor, the scan) is imported on the first
call, in its worker thread: the commands are registered from the light result
types alone, so a bridge start does not load the migration code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio

from bridge.collector.errors import MigrationError
from bridge.collector.status import CollectorMigrationResult, CollectorMigrationStatus
from bridge.errors import BridgeError
from bridge.host.app import App
from bridge.host.registry import NoParams, WorkDoneParams, command
from bridge.host.request import Request, current

if TYPE_CHECKING:
    from bridge.collector.execute import StepHook
    from bridge.collector.service import CollectorMigrationService


class RunMigrationParams(WorkDoneParams):
    dry_run: bool = False


class RollbackMigrationParams(WorkDoneParams):
    pass


# What each step means to the host, and how far along it is (percent).
_STEPS = {
    "locked": ("locked the migration", 5),
    "journaled": ("journal written", 10),
    "backed_up": ("legacy roots backed up", 45),
    "staged": ("new tree staged", 80),
    "journaled_swap": ("swapping the new tree in", 90),
}


def _reporter(request: Request) -> StepHook:
    def hook(step: str) -> None:
        known = _STEPS.get(step)
        if known is not None:
            request.report(known[0], known[1])

    return hook


def _service(request: Request | None = None) -> CollectorMigrationService:
    """A service on ``$HOME`` (call it in the worker thread: its first call imports the migration code)."""
    from bridge.collector.service import CollectorMigrationService

    if request is None:
        return CollectorMigrationService()
    return CollectorMigrationService(hook=_reporter(request), cancelled=request.cancelled)


def _host_error(exc: MigrationError) -> BridgeError:
    return BridgeError(exc.code, exc.message, kind=exc.kind, **exc.details)


@command("get_collector_migration_status", result=CollectorMigrationStatus)
async def get_collector_migration_status(app: App, params: NoParams) -> CollectorMigrationStatus:
    """Where the collector roots stand; reading it writes nothing."""
    return await anyio.to_thread.run_sync(lambda: _service().status())


@command("run_collector_migration", params=RunMigrationParams, result=CollectorMigrationResult)
async def run_collector_migration(app: App, params: RunMigrationParams) -> CollectorMigrationResult:
    """Migrate the legacy collector roots into the canonical one (a dry run writes nothing)."""
    request = current()
    request.begin("Collector migration", "dry run" if params.dry_run else None)
    try:
        result = await anyio.to_thread.run_sync(lambda: _service(request).run(params.dry_run))
    except MigrationError as exc:
        request.end(exc.message)
        raise _host_error(exc) from None
    request.end("migrated" if result.migrated else "nothing to migrate")
    return result


@command("rollback_collector_migration", params=RollbackMigrationParams, result=CollectorMigrationResult)
async def rollback_collector_migration(app: App, params: RollbackMigrationParams) -> CollectorMigrationResult:
    """Restore the canonical tree the last migration replaced; status becomes ``deferred``."""
    request = current()
    request.begin("Collector migration rollback")
    try:
        result = await anyio.to_thread.run_sync(lambda: _service(request).rollback())
    except MigrationError as exc:
        request.end(exc.message)
        raise _host_error(exc) from None
    request.end("rolled back")
    return result
