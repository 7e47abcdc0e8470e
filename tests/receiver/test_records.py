"""Flattening and dedup keys (pure): redelivery collides, different records never do."""

from __future__ import annotations

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from bridge.receiver.decode import Format, Signal, parse_request
from bridge.receiver.records import CLAUDE, CODEX, OTHER, extract, extract_logs
from tests.receiver.payloads import (
    CONVERSATION,
    SESSION,
    claude_event,
    claude_logs,
    codex_event,
    codex_logs,
    kv,
    logs_request,
    to_json,
)


def keys(request: object, signal: Signal = Signal.LOGS) -> list[str]:
    return [r.dedup_key for r in extract(signal, request).records]


def test_claude_event_identity_and_key() -> None:
    [record] = extract_logs(claude_logs(7, name="api_request")).records
    assert record.dedup_key == f"claude:{SESSION}:7"
    assert (record.provider, record.name, record.conversation_id, record.turn_id, record.sequence) == (
        CLAUDE, "claude_code.api_request", SESSION, "prompt-1", 7,
    )  # fmt: skip


def test_claude_redelivery_collides_even_if_other_fields_differ() -> None:
    assert keys(claude_logs(3)) == keys(claude_logs(3, prompt="changed"))
    assert keys(claude_logs(3)) != keys(claude_logs(4))
    assert keys(claude_logs(3, session="other")) != keys(claude_logs(3))


def test_codex_records_identity() -> None:
    request = codex_logs(codex_event("codex.agent_response", **{"turn.id": "t1", "item.id": "msg_1"}))
    [record] = extract_logs(request).records
    assert record.provider == CODEX and record.name == "codex.agent_response"
    assert (record.conversation_id, record.turn_id, record.item_id) == (CONVERSATION, "t1", "msg_1")
    assert record.dedup_key.startswith(f"codex:{CONVERSATION}:2026-11-27T22:58:55.466Z:codex.agent_response:")


def test_one_conversations_codex_keys_sort_in_time_order_whatever_the_event() -> None:
    """So the store's unique index grows at one end (docs/otel-receiver.md, Records and deduplication)."""
    stamps = ["2026-11-27T22:58:55.466Z", "2026-11-27T22:58:55.467Z", "2026-11-27T22:58:56.001Z"]
    names = ["codex.websocket_event", "codex.api_request", "codex.sse_event"]  # not in alphabetical order
    in_order = keys(codex_logs(*(codex_event(name, stamp=stamp) for name, stamp in zip(names, stamps, strict=True))))
    assert sorted(in_order) == in_order


def test_codex_identical_records_collide_and_different_ones_never_do() -> None:
    a = codex_event("codex.sse_event", **{"event.kind": "response.created"})
    b = codex_event("codex.sse_event", **{"event.kind": "response.output_item.added"})  # same ms, no item id
    assert keys(codex_logs(a)) == keys(codex_logs(a))
    ka, kb = keys(codex_logs(a, b))
    assert ka != kb
    later = codex_event("codex.sse_event", stamp="2026-11-27T22:58:55.467Z", **{"event.kind": "response.created"})
    assert keys(codex_logs(later)) != [ka]


def test_attribute_values_of_every_kind_are_read_as_they_were_sent() -> None:
    record = codex_event("codex.tool_result")
    values = {
        "empty": AnyValue(string_value=""),
        "unset": AnyValue(),
        "flag": AnyValue(bool_value=False),
        "zero": AnyValue(int_value=0),
        "ratio": AnyValue(double_value=0.5),
        "raw": AnyValue(bytes_value=b"\x00\x01"),
        "list": AnyValue(array_value=ArrayValue(values=[AnyValue(string_value="a"), AnyValue(int_value=2)])),
        "map": AnyValue(kvlist_value=KeyValueList(values=[KeyValue(key="k", value=AnyValue(string_value="v"))])),
    }
    record.attributes.extend(KeyValue(key=k, value=v) for k, v in values.items())
    [out] = extract_logs(codex_logs(record)).records
    assert {k: out.attributes[k] for k in values} == {
        "empty": "", "unset": None, "flag": False, "zero": 0, "ratio": 0.5, "raw": {"bytes": "AAE="},
        "list": ["a", 2], "map": {"k": "v"},
    }  # fmt: skip


def test_the_event_name_is_the_first_provider_prefixed_one() -> None:
    def name_of(record: LogRecord) -> str | None:
        [out] = extract_logs(logs_request([record])).records
        return out.name

    assert name_of(LogRecord(event_name="codex.user_prompt", body=AnyValue(string_value="claude_code.x"))) == (
        "codex.user_prompt"
    )
    assert name_of(claude_event(1, name="api_request")) == "claude_code.api_request"  # short event.name, full body
    assert name_of(LogRecord(event_name="plain", attributes=[kv("event.name", "other")])) == "plain"
    assert name_of(LogRecord(attributes=[kv("event.name", "other")], body=AnyValue(string_value="text"))) == "other"
    assert name_of(LogRecord(body=AnyValue(string_value="just text"))) is None


def test_codex_tool_call_id() -> None:
    [record] = extract_logs(codex_logs(codex_event("codex.tool_result", call_id="call_9"))).records
    assert record.call_id == "call_9"


def test_same_record_as_protobuf_or_json_gets_the_same_key() -> None:
    request = codex_logs(codex_event("codex.user_prompt", prompt="hi"))
    via_json = parse_request(Signal.LOGS, Format.JSON, to_json(request))
    assert keys(via_json) == keys(request)


def test_other_logs_are_keyed_by_their_whole_content() -> None:
    record = codex_event("x")
    record.ClearField("attributes")
    record.attributes.append(kv("a", 1))
    request = logs_request([record], service="something-else")
    [out] = extract_logs(request).records
    assert out.provider == OTHER and out.dedup_key.startswith("log:")
    changed = logs_request([record], service="something-else-2")
    assert keys(changed) != keys(request)


def test_log_records_with_bad_ids_are_rejected_not_stored() -> None:
    good = codex_event("codex.user_prompt")
    bad = codex_event("codex.user_prompt", prompt="x")
    bad.trace_id = b"\x01" * 5
    result = extract_logs(codex_logs(good, bad))
    assert len(result.records) == 1 and result.rejected == 1
    assert "trace_id" in result.error_message


def spans(*ids: tuple[bytes, bytes]) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    rs.resource.attributes.append(kv("service.name", "codex_app_server"))
    ss = rs.scope_spans.add()
    for trace, span in ids:
        s = ss.spans.add(trace_id=trace, span_id=span, name="turn/start")
        s.attributes.append(kv("thread.id", 2))  # codex's tracing layer: an OS thread number
    return request


def test_spans_keyed_by_ids_and_invalid_ones_rejected() -> None:
    good = (b"\x01" * 16, b"\x02" * 8)
    result = extract(Signal.TRACES, spans(good, (b"\x00" * 16, b"\x02" * 8), (b"\x01" * 16, b"\x02" * 7)))
    assert [r.dedup_key for r in result.records] == [f"span:{'01' * 16}:{'02' * 8}"]
    assert result.rejected == 2
    [record] = result.records
    assert record.provider == CODEX
    assert record.conversation_id is None  # an integer thread.id is not a conversation


def metrics(time_ns: int, *values: int, name: str = "claude_code.token.usage") -> ExportMetricsServiceRequest:
    request = ExportMetricsServiceRequest()
    rm = request.resource_metrics.add()
    rm.resource.attributes.append(kv("service.name", "claude-code"))
    metric = rm.scope_metrics.add().metrics.add(name=name, unit="tokens")
    metric.sum.is_monotonic = True
    for i, value in enumerate(values):
        point = metric.sum.data_points.add(time_unix_nano=time_ns, as_int=value)
        point.attributes.extend([kv("type", f"t{i}"), kv("session.id", SESSION)])
    return request


def test_metric_points_keyed_by_series_and_time() -> None:
    first = keys(metrics(1, 5, 6), Signal.METRICS)
    assert len(set(first)) == 2
    assert keys(metrics(1, 7, 8), Signal.METRICS) == first  # same series and time: a redelivery
    assert set(keys(metrics(2, 5, 6), Signal.METRICS)).isdisjoint(first)
    [point, _] = extract(Signal.METRICS, metrics(1, 5, 6)).records
    assert point.detail["value"] == 5 and point.detail["type"] == "sum" and point.conversation_id == SESSION


def test_points_of_a_nameless_metric_are_rejected() -> None:
    result = extract(Signal.METRICS, metrics(1, 5, 6, name=""))
    assert result.records == [] and result.rejected == 2
