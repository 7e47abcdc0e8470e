"""The OpenTelemetry SDK side of the enrichment: deterministic ids, outbox exporters, providers.

:func:`build_providers` makes a tracer and a logger provider whose
processors hand finished spans and log records to an
:class:`~bridge.enrichment.outbox.Outbox` (encoding and I/O happen elsewhere);
nothing global is touched. Trace and span ids are derived from thread, turn
and item ids (:class:`DeterministicIds`), so the same turn always gets the
same ids, after a restart as well, and a receiver can deduplicate on them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk._logs import LoggerProvider, LogRecordLimits
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_ON

from bridge import __version__
from bridge.enrichment import semconv as sc
from bridge.enrichment.outbox import Outbox

MAX_ATTRIBUTE_CHARS = 8192  # SDK limit: a safety net for every string attribute


# ===================================================================== ids


def _hash_id(bits: int, *parts: str) -> int:
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=bits // 8).digest()
    return int.from_bytes(digest, "big") or 1  # 0 is the invalid id


def trace_id_for(thread_id: str, turn_id: str) -> int:
    return _hash_id(128, "trace", thread_id, turn_id)


def turn_span_id(thread_id: str, turn_id: str) -> int:
    return _hash_id(64, "turn", thread_id, turn_id)


def item_trace_id(thread_id: str, item_id: str) -> int:
    """The trace of a tool item seen outside any known turn."""
    return _hash_id(128, "trace", thread_id, "item", item_id)


def item_span_id(thread_id: str, item_id: str) -> int:
    return _hash_id(64, "item", thread_id, item_id)


class DeterministicIds(IdGenerator):
    """Hands the SDK the ids the enricher chose for the next span (random when none was chosen)."""

    def __init__(self) -> None:
        self._trace: int | None = None
        self._span: int | None = None
        self._random = RandomIdGenerator()

    def use(self, trace_id: int | None, span_id: int) -> None:
        self._trace, self._span = trace_id, span_id

    def generate_trace_id(self) -> int:
        value, self._trace = self._trace, None
        return value if value is not None else int(self._random.generate_trace_id())

    def generate_span_id(self) -> int:
        value, self._span = self._span, None
        return value if value is not None else int(self._random.generate_span_id())


# ===================================================================== providers


class OutboxSpanExporter(SpanExporter):
    """Finished spans go to the outbox; encoding and I/O happen elsewhere."""

    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox

    def export(self, spans: Sequence[Any]) -> Any:
        self._outbox.add("traces", spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class OutboxLogExporter(LogRecordExporter):
    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox

    def export(self, batch: Sequence[Any]) -> Any:
        self._outbox.add("logs", batch)
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


@dataclass
class Providers:
    tracer_provider: Any
    logger_provider: Any
    ids: DeterministicIds


def build_providers(outbox: Outbox) -> Providers:
    """SDK providers that write into ``outbox``; nothing global is touched."""
    resource = Resource.create({sc.SERVICE_NAME: sc.SERVICE, "service.version": __version__})
    meters = NoOpMeterProvider()
    ids = DeterministicIds()
    tracer_provider = TracerProvider(
        sampler=ALWAYS_ON,
        resource=resource,
        shutdown_on_exit=False,
        id_generator=ids,
        span_limits=SpanLimits(max_span_attribute_length=MAX_ATTRIBUTE_CHARS),
        meter_provider=meters,
    )
    tracer_provider.add_span_processor(SimpleSpanProcessor(OutboxSpanExporter(outbox), meter_provider=meters))
    logger_provider = LoggerProvider(
        resource=resource,
        shutdown_on_exit=False,
        meter_provider=meters,
        log_record_limits=LogRecordLimits(max_attribute_length=MAX_ATTRIBUTE_CHARS),
    )
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(OutboxLogExporter(outbox), meter_provider=meters))
    return Providers(tracer_provider, logger_provider, ids)
