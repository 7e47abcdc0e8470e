r"""Finished spans and log records waiting to be encoded, and their OTLP protobuf encoding.

The SDK exporters of :mod:`bridge.enrichment.enrich` append to the
:class:`Outbox` on the event loop (appending is all the event loop does); the
scheduler takes everything on a worker thread and :func:`encode`\ s it with the
official OTLP encoders, imported the first time something is encoded.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from bridge.enrichment.targets import SIGNALS, Signal

log = logging.getLogger("bridge.enrichment.export")  # one logger for the whole export path


class Outbox:
    """Finished spans and log records waiting to be encoded (thread-safe, bounded).

    The SDK exporters append on the event loop; the persister takes
    everything on a worker thread. Past ``max_records`` per signal the oldest
    records are dropped and counted.
    """

    def __init__(self, max_records: int = 20_000) -> None:
        self._lock = threading.Lock()
        self._items: dict[Signal, deque[Any]] = {s: deque() for s in SIGNALS}
        self.max_records = max_records
        self.dropped_records = 0
        self.wake: Callable[[], None] = lambda: None

    def add(self, signal: Signal, records: Sequence[Any]) -> None:
        dropped = 0
        with self._lock:
            items = self._items[signal]
            items.extend(records)
            while len(items) > self.max_records:
                items.popleft()
                dropped += 1
            self.dropped_records += dropped
        if dropped:
            log.warning("export outbox full: dropped %d oldest %s records (disk writes are behind)", dropped, signal)
        self.wake()

    def count_dropped(self, records: int) -> None:
        with self._lock:
            self.dropped_records += records

    def take(self) -> dict[Signal, list[Any]]:
        with self._lock:
            out = {s: list(q) for s, q in self._items.items()}
            for q in self._items.values():
                q.clear()
        return out

    def __len__(self) -> int:
        with self._lock:
            return sum(len(q) for q in self._items.values())


def encode(signal: Signal, records: Sequence[Any]) -> bytes:
    """An ``Export{Trace,Logs}ServiceRequest`` as protobuf bytes, by the official encoders."""
    if signal == "traces":
        from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

        return bytes(encode_spans(records).SerializeToString())
    from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs

    return bytes(encode_logs(records).SerializeToString())
