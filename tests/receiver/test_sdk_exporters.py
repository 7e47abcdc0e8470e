"""The opentelemetry-sdk's own OTLP/HTTP exporters (protobuf, plain and gzip) feed the receiver.

Providers are built and injected here, never set globally. The SDK exports
synchronously over ``requests``, so the emitting code runs in a worker thread
while the receiver serves on this test's event loop.
"""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.receiver.payloads import SESSION
from tests.receiver.support import running_receiver

RESOURCE = Resource.create({"service.name": "claude-code", "service.version": "2.1.197"})
COMPRESSIONS = [Compression.NoCompression, Compression.Gzip]


@pytest.mark.parametrize("compression", COMPRESSIONS, ids=["plain", "gzip"])
async def test_sdk_log_exporter(tmp_path: Path, compression: Compression) -> None:
    async with running_receiver(tmp_path) as rx:
        exporter = OTLPLogExporter(
            endpoint=f"{rx.endpoint}/v1/logs", headers={"x-capture-bridge-key": rx.key}, compression=compression
        )

        def emit() -> bool:
            provider = LoggerProvider(resource=RESOURCE)
            provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
            logger = provider.get_logger("com.anthropic.claude_code.events")
            for sequence, name in enumerate(["user_prompt", "api_request", "assistant_response"]):
                logger.emit(
                    body=f"claude_code.{name}",
                    event_name=f"claude_code.{name}",
                    attributes={
                        "session.id": SESSION,
                        "event.sequence": sequence,
                        "event.name": name,
                        "prompt.id": "p1",
                    },
                )
            flushed = provider.force_flush()
            provider.shutdown()
            return flushed

        assert await anyio.to_thread.run_sync(emit)
        rows = rx.rows("signal = 'log'")
        assert [(r["dedup_key"], r["name"], r["turn_id"]) for r in rows] == [
            (f"claude:{SESSION}:0", "claude_code.user_prompt", "p1"),
            (f"claude:{SESSION}:1", "claude_code.api_request", "p1"),
            (f"claude:{SESSION}:2", "claude_code.assistant_response", "p1"),
        ]
        assert rows[0]["service_name"] == "claude-code" and rows[0]["scope_name"] == "com.anthropic.claude_code.events"
        assert rx.service.counters.rejected == 0


@pytest.mark.parametrize("compression", COMPRESSIONS, ids=["plain", "gzip"])
async def test_sdk_span_exporter(tmp_path: Path, compression: Compression) -> None:
    async with running_receiver(tmp_path) as rx:
        exporter = OTLPSpanExporter(
            endpoint=f"{rx.endpoint}/v1/traces", headers={"x-capture-bridge-key": rx.key}, compression=compression
        )
        seen = InMemorySpanExporter()

        def emit() -> None:
            provider = TracerProvider(resource=RESOURCE)
            provider.add_span_processor(SimpleSpanProcessor(exporter))
            provider.add_span_processor(SimpleSpanProcessor(seen))
            tracer = provider.get_tracer("com.anthropic.claude_code.tracing")
            with tracer.start_as_current_span("claude_code.interaction", attributes={"session.id": SESSION}):
                with tracer.start_as_current_span("claude_code.llm_request", attributes={"input_tokens": 42}):
                    pass
                with tracer.start_as_current_span("claude_code.tool", attributes={"tool_name": "Bash"}):
                    pass
            provider.shutdown()

        await anyio.to_thread.run_sync(emit)
        sent = {
            (f"{s.context.trace_id:032x}", f"{s.context.span_id:016x}", s.name): (
                f"{s.parent.span_id:016x}" if s.parent else None
            )
            for s in seen.get_finished_spans()
        }
        rows = rx.rows("signal = 'span'")
        stored = {(r["trace_id"], r["span_id"], r["name"]): json.loads(r["detail"])["parentSpanId"] for r in rows}
        assert stored == sent and len(rows) == 3


@pytest.mark.parametrize("compression", COMPRESSIONS, ids=["plain", "gzip"])
async def test_sdk_metric_exporter(tmp_path: Path, compression: Compression) -> None:
    async with running_receiver(tmp_path) as rx:
        exporter = OTLPMetricExporter(
            endpoint=f"{rx.endpoint}/v1/metrics", headers={"x-capture-bridge-key": rx.key}, compression=compression
        )

        def emit() -> None:
            reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
            provider = MeterProvider(resource=RESOURCE, metric_readers=[reader])
            meter = provider.get_meter("com.anthropic.claude_code")
            tokens = meter.create_counter("claude_code.token.usage", unit="tokens")
            tokens.add(42, {"type": "input", "session.id": SESSION})
            tokens.add(7, {"type": "output", "session.id": SESSION})
            meter.create_histogram("claude_code.request.duration", unit="ms").record(30.5, {"session.id": SESSION})
            provider.shutdown()  # collects and exports once

        await anyio.to_thread.run_sync(emit)
        rows = rx.rows("signal = 'metric' AND name = 'claude_code.token.usage'")
        assert len(rows) == 2
        values = {json.loads(r["attributes"])["type"]: json.loads(r["detail"])["value"] for r in rows}
        assert values == {"input": 42, "output": 7}
        assert all(r["conversation_id"] == SESSION and r["provider"] == "claude_code" for r in rows)
        [hist] = rx.rows("name = 'claude_code.request.duration'")
        detail = json.loads(hist["detail"])
        assert detail["type"] == "histogram" and detail["count"] == 1 and detail["sum"] == 30.5
