"""The receiver service: storing with dedup, partial success, status, runtime.json, re-binding."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import anyio
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from bridge.config.model import OtlpReceiverConfig
from tests.receiver.payloads import SESSION, claude_logs, codex_event, codex_logs, spans_json, to_json
from tests.receiver.support import post, running_receiver


async def test_redelivery_is_stored_once_and_counted(tmp_path: Path) -> None:
    async with running_receiver(tmp_path) as rx:
        body = claude_logs(0, 1, 2).SerializeToString()
        for _ in range(3):
            reply = await post(rx.endpoint, "/v1/logs", body, key=rx.key)
            assert reply.status == 200
            assert not ExportLogsServiceResponse.FromString(reply.body).HasField("partial_success")
        # the same events again, now as OTLP/JSON, overlapping with one new one
        reply = await post(
            rx.endpoint, "/v1/logs", to_json(claude_logs(2, 3)), key=rx.key, content_type="application/json"
        )
        assert reply.status == 200 and reply.headers["content-type"] == "application/json"
        rows = rx.rows()
        assert [r["dedup_key"] for r in rows] == [f"claude:{SESSION}:{i}" for i in range(4)]
        assert [r["sequence"] for r in rows] == [0, 1, 2, 3]
        c = rx.service.counters
        assert (c.records_stored, c.records_duplicate, c.accepted) == (4, 7, 4)


async def test_codex_records_without_item_ids_are_deduped_by_content(tmp_path: Path) -> None:
    async with running_receiver(tmp_path) as rx:
        created = codex_event("codex.sse_event", **{"event.kind": "response.created"})
        added = codex_event("codex.sse_event", **{"event.kind": "response.output_item.added"})
        body = codex_logs(created, added).SerializeToString()
        assert (await post(rx.endpoint, "/v1/logs", body, key=rx.key)).status == 200
        assert (await post(rx.endpoint, "/v1/logs", body, key=rx.key)).status == 200
        rows = rx.rows()
        assert len(rows) == 2
        assert {json.loads(r["attributes"])["event.kind"] for r in rows} == {
            "response.created",
            "response.output_item.added",
        }
        assert rx.service.counters.records_duplicate == 2


async def test_json_spans_are_stored_with_their_hex_ids(tmp_path: Path) -> None:
    trace, span, parent = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174", "eee19b7ec3c1b173"
    async with running_receiver(tmp_path) as rx:
        reply = await post(
            rx.endpoint, "/v1/traces", spans_json(trace, span, parent), key=rx.key, content_type="application/json"
        )
        assert reply.status == 200, reply
        [row] = rx.rows()
        assert (row["trace_id"], row["span_id"], row["dedup_key"]) == (trace, span, f"span:{trace}:{span}")
        assert json.loads(row["detail"])["parentSpanId"] == parent
        assert json.loads(row["attributes"])["input_tokens"] == 42
        assert row["conversation_id"] == SESSION and row["provider"] == "claude_code"


async def test_invalid_elements_get_a_partial_success(tmp_path: Path) -> None:
    async with running_receiver(tmp_path) as rx:
        request = ExportTraceServiceRequest()
        spans = request.resource_spans.add().scope_spans.add().spans
        spans.add(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="ok")
        spans.add(trace_id=b"", span_id=b"\x02" * 8, name="no trace id")
        reply = await post(rx.endpoint, "/v1/traces", request.SerializeToString(), key=rx.key)
        assert reply.status == 200
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

        partial = ExportTraceServiceResponse.FromString(reply.body).partial_success
        assert partial.rejected_spans == 1 and "trace_id" in partial.error_message
        assert rx.count() == 1 and rx.service.counters.records_rejected == 1


async def test_secrets_are_redacted_before_the_store(tmp_path: Path) -> None:
    async with running_receiver(tmp_path) as rx:
        request = codex_logs(
            codex_event(
                "codex.user_prompt", prompt="use sk-abcdefghijklmnop please", **{"x-capture-bridge-key": rx.key}
            )
        )
        assert (await post(rx.endpoint, "/v1/logs", request.SerializeToString(), key=rx.key)).status == 200
        [row] = rx.rows()
        assert "sk-abcdefghijklmnop" not in row["attributes"] and rx.key not in row["attributes"]
        assert json.loads(row["attributes"])["prompt"] == "use [REDACTED] please"


async def test_auto_ingest_off_answers_but_stores_nothing(tmp_path: Path) -> None:
    async with running_receiver(tmp_path, ingest=lambda: False) as rx:
        reply = await post(rx.endpoint, "/v1/logs", claude_logs(1, 2).SerializeToString(), key=rx.key)
        assert reply.status == 200
        assert rx.count() == 0
        status = rx.service.status()
        assert status.records_discarded == 2 and "autoIngestEnabled is false" in (status.message or "")


async def test_status_runtime_json_and_notifications(tmp_path: Path) -> None:
    async with running_receiver(tmp_path) as rx:
        status = rx.service.status()
        assert status.state == "listening" and status.endpoint == rx.endpoint
        assert status.header_name == "x-capture-bridge-key" and status.last_batch_at_iso is None
        assert (await post(rx.endpoint, "/v1/logs", claude_logs(1).SerializeToString(), key=rx.key)).status == 200
        assert (await post(rx.endpoint, "/v1/logs", b"", key=None)).status == 401
        status = rx.service.status()
        assert (status.accepted, status.rejected) == (1, 1)
        assert status.last_batch_at_iso is not None and status.last_batch_at_iso.endswith("Z")
        wire = json.dumps(__import__("msgspec").to_builtins(status))
        assert rx.key not in wire
        runtime = json.loads((rx.data_dir / "runtime.json").read_text())
        assert runtime["otlpReceiver"] == {
            "state": "listening",
            "endpoint": rx.endpoint,
            "headerName": "x-capture-bridge-key",
        }
        assert runtime["pid"] > 0
        assert [(m, p.state) for m, p in rx.emitted] == [("otel-receiver-status", "listening")]
        assert rx.key not in (rx.data_dir / "runtime.json").read_text()
    # closed: stopped, reported and written
    assert rx.emitted[-1][1].state == "stopped"
    assert json.loads((rx.data_dir / "runtime.json").read_text())["otlpReceiver"]["state"] == "stopped"


async def test_apply_config_rebinds_stops_and_reports_bind_errors(tmp_path: Path) -> None:
    async with running_receiver(tmp_path) as rx:
        first = rx.endpoint
        # limits only: no re-bind
        status = await rx.service.apply_config(OtlpReceiverConfig(port=0, max_requests_per_second=7))
        assert status.endpoint == first and len(rx.emitted) == 1

        status = await rx.service.apply_config(OtlpReceiverConfig(port=0, enabled=False))
        assert status.state == "stopped" and status.endpoint is None
        assert "otlpReceiver.enabled" in (status.message or "")
        with anyio.fail_after(5):
            try:
                await post(first, "/v1/logs", b"", key=rx.key, timeout=2)
                raise AssertionError("the stopped receiver still answered")
            except OSError:
                pass

        # a port that is taken: state error, with a message saying what to do
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            status = await rx.service.apply_config(OtlpReceiverConfig(port=port))
            assert status.state == "error" and str(port) in (status.message or "")
            assert "otlpReceiver" in (status.message or "")

        status = await rx.service.apply_config(OtlpReceiverConfig(port=0))
        assert status.state == "listening"
        reply = await post(rx.service.endpoint or "", "/v1/logs", claude_logs(5).SerializeToString(), key=rx.key)
        assert reply.status == 200
        assert [p.state for _, p in rx.emitted] == ["listening", "stopped", "error", "listening"]
