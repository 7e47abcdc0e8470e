"""The storage probe: finds out, without anyone asking, when writes work again.

While :class:`~bridge.store.health.StorageHealth` holds a fault, every
``interval_s`` it writes a small row (:meth:`Database.probe`); once that works
it asks each backlog holder (the capture pipeline's held batches) to commit
what it holds, and only when all of that is stored is the fault cleared. A
damaged store is checked (``quick_check``) and, when damaged, moved aside and
replaced. At start it runs the quick check once, off the first-answer path.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import anyio

from bridge.store.db import Database

log = logging.getLogger("bridge.store")

PROBE_INTERVAL_S = 0.5

Backlog = Callable[[], Awaitable[bool]]


class StorageProbe:
    def __init__(self, db: Database, interval_s: float = PROBE_INTERVAL_S) -> None:
        self.db = db
        self.interval_s = interval_s
        self.backlogs: list[Backlog] = []
        self.probes_total = 0
        self._kick = anyio.Event()

    def add_backlog(self, flush: Backlog) -> None:
        """``await flush()`` commits what the holder holds; True when nothing is left."""
        self.backlogs.append(flush)

    async def check_at_start(self) -> None:
        """``PRAGMA quick_check`` in a worker thread; a damaged store is moved aside and replaced."""
        try:
            moved = await anyio.to_thread.run_sync(self.db.check_and_repair, abandon_on_cancel=True)
        except Exception:
            log.exception("the store's quick_check could not run")
            return
        if moved is None:
            log.info("the store passed quick_check")

    async def run(self) -> None:
        health = self.db.health
        while True:
            if health.writable:
                await anyio.sleep(self.interval_s)
                continue
            await anyio.sleep(self.interval_s)
            await self.probe_once()

    async def probe_once(self) -> bool:
        """One probe round; True when the fault was cleared."""
        health = self.db.health
        fault = health.fault
        if fault is None:
            return True
        self.probes_total += 1
        if fault.kind == "corrupt":
            await anyio.to_thread.run_sync(self.db.check_and_repair)
        try:
            await anyio.to_thread.run_sync(self.db.probe)
        except Exception as exc:
            log.debug("storage probe: writes still fail (%s)", exc)
            return False
        for flush in self.backlogs:
            if not await flush():
                return False
        if health.clear():
            log.info("the store in %s can be written again", self.db.path.parent)
        return True
