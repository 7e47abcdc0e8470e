"""The export's batch processor: persister and sender tasks around one disk queue.

Spans and log records leave the SDK exporters of :mod:`bridge.enrichment.enrich`
into an in-memory :class:`~bridge.enrichment.outbox.Outbox`. A persister task
encodes them on a worker thread and writes one file per batch into a bounded
:class:`~bridge.enrichment.disk_queue.DiskQueue`. A sender task POSTs the
oldest file to ``<endpoint>/v1/traces`` or ``/v1/logs``
(:func:`~bridge.enrichment.sender.post_http`) and deletes it only after a 2xx,
retrying with capped backoff. So an unreachable endpoint never slows the
stream: batches wait on disk, survive a restart, and when the queue is full
the oldest are dropped, counted and logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from bridge.clock import iso_seconds
from bridge.enrichment.disk_queue import DiskQueue, QueuedBatch
from bridge.enrichment.outbox import Outbox, encode
from bridge.enrichment.sender import PostFn, PostResult, post_http
from bridge.enrichment.targets import ExportTarget, Signal, SignalTarget

log = logging.getLogger("bridge.enrichment.export")  # one logger for the whole export path


@dataclass(frozen=True, slots=True)
class QueueLimits:
    max_batches: int = 2000
    max_bytes: int = 64 * 1024 * 1024
    max_outbox_records: int = 20_000
    records_per_batch: int = 512


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    initial_s: float = 0.5
    cap_s: float = 30.0

    def delay(self, failures: int) -> float:
        return float(min(self.cap_s, self.initial_s * (2 ** max(0, failures - 1))))


@dataclass
class ExportCounters:
    sent_batches: int = 0
    sent_bytes: int = 0
    rejected_batches: int = 0  # permanent HTTP errors: the batch was dropped
    failed_attempts: int = 0
    consecutive_failures: int = 0
    last_error: str | None = None
    last_error_at: float | None = None
    last_sent_at: float | None = None
    drops_logged: int = 0
    drop_logged_at: float = field(default=0.0)


class _Wake:
    """A level-triggered wake-up that resets when consumed."""

    def __init__(self) -> None:
        self._event = anyio.Event()

    def set(self) -> None:
        self._event.set()

    async def wait(self, timeout: float | None = None) -> bool:
        with anyio.move_on_after(timeout):
            await self._event.wait()
        fired = self._event.is_set()
        if fired:
            self._event = anyio.Event()
        return fired


DROP_LOG_EVERY_S = 30.0


class OtlpExport:
    """Persister and sender tasks around one :class:`DiskQueue`.

    ``refuse(target)`` is asked before every send (the own receiver may have
    moved); while it answers, nothing is sent and the queue waits.
    """

    def __init__(
        self,
        queue_dir: Path,
        *,
        limits: QueueLimits | None = None,
        retry: RetryPolicy | None = None,
        post: PostFn = post_http,
        refuse: Callable[[ExportTarget], str | None] = lambda _t: None,
        encoder: Callable[[Signal, Sequence[Any]], bytes] = encode,
    ) -> None:
        self.queue_dir = queue_dir
        self.limits = limits or QueueLimits()
        self.retry = retry or RetryPolicy()
        self._post = post
        self._refuse = refuse
        self._encode = encoder
        self.outbox = Outbox(self.limits.max_outbox_records)
        self.queue: DiskQueue | None = None
        self.counters = ExportCounters()
        self.target: ExportTarget | None = None
        self.refused: str | None = None
        self._persist_wake = _Wake()
        self._send_wake = _Wake()  # new data
        self._kick = _Wake()  # target changed: retry at once
        self._scope: anyio.CancelScope | None = None
        self._closed = False
        self._persist_lock = anyio.Lock()

    # ------------------------------------------------------------ control
    async def open(self) -> None:
        """Load (or create) the on-disk queue; blocking I/O on a worker thread."""
        limits = self.limits
        self.queue = await anyio.to_thread.run_sync(
            lambda: DiskQueue(self.queue_dir, max_batches=limits.max_batches, max_bytes=limits.max_bytes)
        )
        self.outbox.wake = self._persist_wake.set  # the SDK exporters run on the event loop
        if self.queue.dropped_batches:
            self._log_drops(self.queue.dropped_batches, force=True)

    def set_target(self, target: ExportTarget | None) -> None:
        if target != self.target:
            self.counters.consecutive_failures = 0
        self.target = target
        self.refused = None
        self._kick.set()
        self._send_wake.set()

    async def run(self) -> None:
        """Persist and send until :meth:`close`."""
        if self._closed:
            return
        if self.queue is None:
            await self.open()
        with anyio.CancelScope() as scope:
            self._scope = scope
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._persist_loop)
                tg.start_soon(self._send_loop)

    async def close(self, budget_s: float = 0.5) -> None:
        """Write what is still in memory to disk (bounded), then stop; unsent batches stay queued."""
        self._closed = True
        with anyio.move_on_after(budget_s, shield=True):
            await self.persist()
        if self._scope is not None:
            self._scope.cancel()

    # ------------------------------------------------------------ persisting
    async def persist(self) -> int:
        """Encode and store everything in the outbox; returns batches written."""
        if self.queue is None or not len(self.outbox):
            return 0
        async with self._persist_lock:
            written = await anyio.to_thread.run_sync(self._persist_sync)
        if written:
            self._send_wake.set()
        return written

    def _persist_sync(self) -> int:
        queue = self.queue
        assert queue is not None
        written = 0
        dropped_before = queue.dropped_batches
        per = self.limits.records_per_batch
        for signal, records in self.outbox.take().items():
            for start in range(0, len(records), per):
                chunk = records[start : start + per]
                try:
                    body = self._encode(signal, chunk)
                except Exception:
                    log.exception("encoding %d %s records for export failed; they are dropped", len(chunk), signal)
                    self.outbox.count_dropped(len(chunk))
                    continue
                try:
                    queue.put(signal, body)
                except OSError as exc:
                    log.warning("writing an export batch to %s failed (%s); %d records dropped",
                                self.queue_dir, exc, len(chunk))  # fmt: skip
                    self.outbox.count_dropped(len(chunk))
                    continue
                written += 1
        dropped = queue.dropped_batches - dropped_before
        if dropped:
            self._log_drops(dropped)
        return written

    def _log_drops(self, dropped: int, force: bool = False) -> None:
        """Every drop is logged; under a sustained outage, as one summary line per interval."""
        c = self.counters
        c.drops_logged += dropped
        now = time.monotonic()
        if force or c.drop_logged_at == 0.0 or now - c.drop_logged_at >= DROP_LOG_EVERY_S:
            queue = self.queue
            log.warning(
                "export queue full (%s batches / %s bytes max): dropped the %d oldest batches "
                "(%d dropped in total); the endpoint %s has not taken them",
                self.limits.max_batches, self.limits.max_bytes, c.drops_logged,
                queue.dropped_batches if queue else c.drops_logged,
                self.target.endpoint if self.target else "(none)",
            )  # fmt: skip
            c.drops_logged = 0
            c.drop_logged_at = now

    async def _persist_loop(self) -> None:
        while True:
            await self._persist_wake.wait()
            try:
                await self.persist()
            except Exception:
                log.exception("persisting export batches failed")

    # ------------------------------------------------------------ sending
    async def _send_loop(self) -> None:
        queue = self.queue
        assert queue is not None
        while True:
            target = self.target
            if target is None:
                await self._send_wake.wait()
                continue
            refusal = self._refuse(target)
            if refusal != self.refused:
                self.refused = refusal
                if refusal:
                    log.warning("%s", refusal)
            if refusal:
                await self._kick.wait(5.0)  # the receiver may move; look again now and then
                continue
            batch = queue.claim()
            if batch is None:
                await self._send_wake.wait()
                continue
            sig = target.for_signal(batch.signal)
            if sig is None:  # this signal is not exported (only the other signal's endpoint is set)
                await anyio.to_thread.run_sync(queue.done, batch)
                continue
            result = await anyio.to_thread.run_sync(
                self._send_one, batch, sig, target.timeout_s, abandon_on_cancel=True
            )
            if result.ok or result.permanent:
                await anyio.to_thread.run_sync(queue.done, batch)
                self._record_success(batch, result, target)
                continue
            queue.release(batch)
            delay = self._record_failure(result, target)
            await self._kick.wait(delay)

    def _send_one(self, batch: QueuedBatch, sig: SignalTarget, timeout_s: float) -> PostResult:
        try:
            body = batch.path.read_bytes()
        except FileNotFoundError:
            return PostResult(204)  # dropped by the bound while we picked it: nothing to send
        return self._post(sig.url, body, sig.headers, timeout_s)

    def _record_success(self, batch: QueuedBatch, result: PostResult, target: ExportTarget) -> None:
        c = self.counters
        if result.ok:
            if c.consecutive_failures:
                log.info("export endpoint %s is reachable again; sending the queue", target.endpoint)
            c.sent_batches += 1
            c.sent_bytes += batch.size
            c.last_sent_at = time.time()
        else:
            c.rejected_batches += 1
            c.last_error = f"{result.error}: the endpoint refused a {batch.signal} batch; it was dropped"
            c.last_error_at = time.time()
            log.warning("export endpoint %s refused a %s batch for good (%s); dropped it",
                        target.endpoint, batch.signal, result.error)  # fmt: skip
        c.consecutive_failures = 0

    def _record_failure(self, result: PostResult, target: ExportTarget) -> float:
        c = self.counters
        c.failed_attempts += 1
        c.consecutive_failures += 1
        c.last_error = result.error or f"HTTP {result.status}"
        c.last_error_at = time.time()
        delay = self.retry.delay(c.consecutive_failures)
        if result.retry_after_s is not None:
            delay = min(self.retry.cap_s, max(delay, result.retry_after_s))
        if c.consecutive_failures == 1 or c.consecutive_failures % 20 == 0:
            log.warning("export to %s failed (%s); %d batches wait on disk, retrying in %.1f s",
                        target.endpoint, c.last_error, self.queue.depth if self.queue else 0, delay)  # fmt: skip
        return delay

    # ------------------------------------------------------------ status
    def metrics(self) -> dict[str, Any]:
        c = self.counters
        queue = self.queue
        return {
            "queueBatches": queue.depth if queue else 0,
            "queueBytes": queue.size_bytes if queue else 0,
            "droppedBatches": queue.dropped_batches if queue else 0,
            "droppedRecords": self.outbox.dropped_records,
            "sentBatches": c.sent_batches,
            "rejectedBatches": c.rejected_batches,
            "failedAttempts": c.failed_attempts,
            "consecutiveFailures": c.consecutive_failures,
            "lastError": c.last_error,
            "lastErrorAtIso": None if c.last_error_at is None else iso_seconds(c.last_error_at),
            "lastSentAtIso": None if c.last_sent_at is None else iso_seconds(c.last_sent_at),
        }
