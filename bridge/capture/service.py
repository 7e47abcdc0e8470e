"""The capture subsystem as one object: store, pipeline and their housekeeping."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import anyio
from anyio.abc import TaskGroup

from bridge.capture.pipeline import CapturePipeline, Emit
from bridge.capture.store import CaptureStore
from bridge.store.db import Database

log = logging.getLogger("bridge.capture")

RETENTION_EVERY_S = 3600.0
INCOMPLETE_AFTER_S = 600.0  # a turn silent this long is marked incomplete
SWEEP_EVERY_S = 30.0

RetentionStep = Callable[[str, int], None]


class CaptureService:
    def __init__(
        self,
        db: Database,
        emit: Emit,
        *,
        emit_built: Callable[[Callable[[int], list[bytes]]], None] | None = None,
        preferred_source: str,
        stream_enabled: Callable[[], bool],
        retention_days: Callable[[], int],
    ) -> None:
        self.store = CaptureStore(db, preferred_source)
        self.pipeline = CapturePipeline(self.store, emit, stream_enabled, emit_built)
        self._retention_days = retention_days
        self.retention_hooks: list[Callable[[int], object]] = []

    async def start(self, tg: TaskGroup) -> None:
        tg.start_soon(self.pipeline.run)
        tg.start_soon(self._housekeeping)

    def retention_cutoff_ms(self) -> int:
        """Capture time before which content is due to go (config ``retentionDays`` ago)."""
        return int((time.time() - self._retention_days() * 86400) * 1000)

    def enforce_retention(self, cutoff_ms: int | None = None, step: RetentionStep | None = None) -> int:
        """Delete content captured before the cutoff, then the history that ages out with it.

        ``step(message, removed)`` is told after each part (the host's progress);
        returns the number of captured threads removed.
        """
        cutoff = self.retention_cutoff_ms() if cutoff_ms is None else cutoff_ms
        removed = self.store.apply_retention(cutoff)
        if step is not None:
            step("captured content removed", removed)
        for hook in self.retention_hooks:  # other subsystems' history ages out with the data too
            hook(cutoff)
        if step is not None and self.retention_hooks:
            step("history pruned", removed)
        if removed:
            log.info("retention removed %d captured threads", removed)
        return removed

    def set_preferred_source(self, source: str) -> None:
        """The dedup precedence changed: it applies from the next decision on."""
        self.store.ledger.preferred_source = source

    def sidecar_gone(self) -> list[str]:
        """The sidecar restarted or exited: turns still open will never complete from it."""
        return self.store.mark_incomplete()

    async def _housekeeping(self) -> None:
        last_retention = 0.0
        while True:
            now = time.monotonic()
            if now - last_retention >= RETENTION_EVERY_S:
                last_retention = now
                await anyio.to_thread.run_sync(self.enforce_retention)
            idle_before = int((time.time() - INCOMPLETE_AFTER_S) * 1000)
            marked = await anyio.to_thread.run_sync(self.store.mark_incomplete, None, idle_before)
            if marked:
                log.info("marked %d silent turns incomplete", len(marked))
            await anyio.sleep(SWEEP_EVERY_S)
