"""The storage half of the reliability metrics: the fact, the hold, the gap, a moved-aside store."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bridge.clock import iso_ms

if TYPE_CHECKING:
    from bridge.capture.service import CaptureService
    from bridge.store.db import Database


def storage_metrics(db: Database, capture: CaptureService | None) -> dict[str, Any]:
    health = db.health
    fault = health.fault
    m: dict[str, Any] = {
        "storeWritable": fault is None,
        "storeProblem": None if fault is None else fault.kind,
        "storeFaultSinceIso": None if fault is None else iso_ms(fault.since_ms),
        "storeWriteFailuresTotal": health.failures_total,
        "storeRecoveriesTotal": health.recoveries_total,
        "storeMovedAsideTo": str(db.moved_to) if db.moved_to is not None else None,
    }
    if capture is not None:
        held = capture.pipeline.held
        m.update(
            storeHeldBatches=len(held),
            storeHeldBytes=held.bytes,
            storeHoldLimitBytes=held.limit_bytes,
            storeHeldBatchesCommitted=capture.pipeline.held_batches_committed,
            storeGapBatches=held.dropped_batches,
            storeGapEvents=held.dropped_units,
            captureBatchesDropped=capture.pipeline.batches_dropped,
        )
    return m
