"""Collector migration commands (docs/protocol.md §3.8, §4.4).

The service is stateless and blocking, so each call builds one on ``$HOME``
and runs it in a worker thread; the migration lock, not the bridge, keeps
concurrent runs (other bridges, the CLI) apart.
"""

from __future__ import annotations

import anyio

from bridge.collector.errors import MigrationError
from bridge.collector.service import CollectorMigrationResult, CollectorMigrationService
from bridge.collector.status import CollectorMigrationStatus
from bridge.errors import BridgeError
from bridge.host.app import App
from bridge.host.registry import NoParams, Params, command


class RunMigrationParams(Params):
    dry_run: bool = False


def _host_error(exc: MigrationError) -> BridgeError:
    return BridgeError(exc.code, exc.message, kind=exc.kind, **exc.details)


@command("get_collector_migration_status", result=CollectorMigrationStatus)
async def get_collector_migration_status(app: App, params: NoParams) -> CollectorMigrationStatus:
    """Where the collector roots stand; reading it writes nothing."""
    return await anyio.to_thread.run_sync(CollectorMigrationService().status)


@command("run_collector_migration", params=RunMigrationParams, result=CollectorMigrationResult)
async def run_collector_migration(app: App, params: RunMigrationParams) -> CollectorMigrationResult:
    """Migrate the legacy collector roots into the canonical one (a dry run writes nothing)."""
    try:
        return await anyio.to_thread.run_sync(CollectorMigrationService().run, params.dry_run)
    except MigrationError as exc:
        raise _host_error(exc) from None


@command("rollback_collector_migration", result=CollectorMigrationResult)
async def rollback_collector_migration(app: App, params: NoParams) -> CollectorMigrationResult:
    """Restore the canonical tree the last migration replaced; status becomes ``deferred``."""
    try:
        return await anyio.to_thread.run_sync(CollectorMigrationService().rollback)
    except MigrationError as exc:
        raise _host_error(exc) from None
