"""Small OTLP requests built with the official messages, shaped like codex's and Claude Code's."""

from __future__ import annotations

import json
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

SESSION = "5b0b1c55-0000-4000-8000-000000000001"
CONVERSATION = "01a21f3b-b0e4-7e63-b7da-cef88fe8bc10"


def kv(key: str, value: Any) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


def logs_request(records: list[LogRecord], service: str = "claude-code", scope: str = "") -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    rl = request.resource_logs.add()
    rl.resource.attributes.append(kv("service.name", service))
    sl = rl.scope_logs.add()
    sl.scope.name = scope
    sl.log_records.extend(records)
    return request


def claude_event(sequence: int, name: str = "user_prompt", session: str = SESSION, **attrs: Any) -> LogRecord:
    record = LogRecord(
        time_unix_nano=1_795_820_335_000_000_000 + sequence, body=AnyValue(string_value=f"claude_code.{name}")
    )
    base = {
        "session.id": session,
        "event.name": name,
        "event.timestamp": "2026-11-27T22:58:55.466Z",
        "event.sequence": sequence,
        "prompt.id": "prompt-1",
    }
    record.attributes.extend(kv(k, v) for k, v in {**base, **attrs}.items())
    return record


def claude_logs(*sequences: int, **attrs: Any) -> ExportLogsServiceRequest:
    return logs_request([claude_event(s, **attrs) for s in sequences], scope="com.anthropic.claude_code.events")


def codex_event(name: str, stamp: str = "2026-11-27T22:58:55.466Z", **attrs: Any) -> LogRecord:
    record = LogRecord(time_unix_nano=1_795_820_335_466_000_000)
    base = {"event.name": name, "event.timestamp": stamp, "conversation.id": CONVERSATION}
    record.attributes.extend(kv(k, v) for k, v in {**base, **attrs}.items())
    return record


def codex_logs(*records: LogRecord) -> ExportLogsServiceRequest:
    return logs_request(list(records), service="codex_exec")


def spans_json(trace_hex: str, span_hex: str, parent_hex: str = "", name: str = "claude_code.llm_request") -> bytes:
    """An OTLP/JSON trace request the way the spec writes it: hex ids, string ints, int enums."""
    return json.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "claude-code"}}]},
                    "scopeSpans": [
                        {
                            "scope": {"name": "com.anthropic.claude_code.tracing"},
                            "spans": [
                                {
                                    "traceId": trace_hex,
                                    "spanId": span_hex,
                                    "parentSpanId": parent_hex,
                                    "name": name,
                                    "kind": 1,
                                    "startTimeUnixNano": "1795820335466000000",
                                    "endTimeUnixNano": "1795820335496000000",
                                    "attributes": [
                                        {"key": "session.id", "value": {"stringValue": SESSION}},
                                        {"key": "input_tokens", "value": {"intValue": "42"}},
                                    ],
                                    "status": {"code": 1},
                                }
                            ],
                        }
                    ],
                }
            ]
        }
    ).encode()


def to_json(message: Any) -> bytes:
    """OTLP/JSON of ``message`` (json_format writes base64 ids: rewrite them as hex like real senders)."""
    import base64

    data = json_format.MessageToDict(message)

    def fix(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: base64.b64decode(v).hex() if k in ("traceId", "spanId", "parentSpanId") else fix(v)
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [fix(v) for v in value]
        return value

    return json.dumps(fix(data)).encode()


def empty_traces() -> ExportTraceServiceRequest:
    return ExportTraceServiceRequest()
