"""Decoding bodies: OTLP/JSON hex ids, bounded gunzip, reasons, response encoding."""

from __future__ import annotations

import base64
import gzip
import json

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from bridge.receiver.decode import (
    Format,
    Rejected,
    Signal,
    decode_body,
    decode_status,
    encode_response,
    encode_status,
    gunzip_bounded,
    hex_ids_to_base64,
    media_format,
    parse_request,
)
from tests.receiver.payloads import claude_logs, spans_json, to_json

TRACE = "5b8efff798038103d269b633813fc60c"
SPAN = "eee19b7ec3c1b174"
PARENT = "eee19b7ec3c1b173"


def test_json_hex_ids_become_the_right_bytes() -> None:
    request = parse_request(Signal.TRACES, Format.JSON, spans_json(TRACE, SPAN, PARENT))
    span = request.resource_spans[0].scope_spans[0].spans[0]
    assert span.trace_id == bytes.fromhex(TRACE)
    assert span.span_id == bytes.fromhex(SPAN)
    assert span.parent_span_id == bytes.fromhex(PARENT)
    # OTLP/JSON string int64 and integer enums
    assert span.start_time_unix_nano == 1795820335466000000
    assert span.attributes[1].value.int_value == 42
    assert span.kind == 1 and span.status.code == 1


def test_hex_conversion_reaches_links_log_records_and_leaves_attribute_values_alone() -> None:
    data = {
        "spans": [{"traceId": TRACE, "links": [{"traceId": TRACE, "spanId": SPAN}]}],
        "logRecords": [
            {"traceId": "", "spanId": SPAN, "attributes": [{"key": "spanId", "value": {"stringValue": "zz"}}]}
        ],
    }
    out = hex_ids_to_base64(data)
    b64 = base64.b64encode(bytes.fromhex(TRACE)).decode()
    assert out["spans"][0]["traceId"] == b64
    assert out["spans"][0]["links"][0]["spanId"] == base64.b64encode(bytes.fromhex(SPAN)).decode()
    assert out["logRecords"][0]["traceId"] == ""
    assert out["logRecords"][0]["attributes"][0]["value"]["stringValue"] == "zz"


def test_bad_hex_names_the_field() -> None:
    with pytest.raises(Rejected) as info:
        parse_request(Signal.TRACES, Format.JSON, spans_json(TRACE, "not-hex!"))
    assert info.value.status == 400
    assert "$.resourceSpans[0].scopeSpans[0].spans[0].spanId must be a hex string" in info.value.reason


def test_protobuf_and_json_decode_to_the_same_message() -> None:
    request = claude_logs(1, 2)
    from_proto = parse_request(Signal.LOGS, Format.PROTOBUF, request.SerializeToString())
    from_json = parse_request(Signal.LOGS, Format.JSON, to_json(request))
    assert from_proto == from_json == request


def test_unknown_json_fields_are_ignored() -> None:
    body = json.dumps({"resourceLogs": [], "somethingNew": {"x": 1}}).encode()
    assert len(parse_request(Signal.LOGS, Format.JSON, body).resource_logs) == 0


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"[]", "must be a JSON object"),
        (b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"timeUnixNano": "soon"}]}]}]}', "timeUnixNano"),
        (b"\xff", "not valid JSON"),
    ],
)
def test_json_reasons(body: bytes, reason: str) -> None:
    with pytest.raises(Rejected) as info:
        parse_request(Signal.LOGS, Format.JSON, body)
    assert info.value.status == 400 and reason in info.value.reason


def test_gunzip_within_limit_and_concatenated_members() -> None:
    assert gunzip_bounded(gzip.compress(b"a" * 1000), 1000) == b"a" * 1000
    assert gunzip_bounded(gzip.compress(b"ab") + gzip.compress(b"cd"), 10) == b"abcd"


@pytest.mark.parametrize(
    ("body", "limit", "status"),
    [
        (gzip.compress(b"a" * 1001), 1000, 413),
        (gzip.compress(b"a" * 100)[:-12], 1000, 400),  # truncated
        (b"not gzip at all", 1000, 400),
        (b"", 1000, 400),
    ],
)
def test_gunzip_refusals(body: bytes, limit: int, status: int) -> None:
    with pytest.raises(Rejected) as info:
        gunzip_bounded(body, limit)
    assert info.value.status == status


def test_plain_body_over_the_limit_is_413() -> None:
    with pytest.raises(Rejected) as info:
        decode_body(Signal.LOGS, Format.PROTOBUF, b"\x00" * 11, gzipped=False, limit=10)
    assert info.value.status == 413


def test_media_types() -> None:
    assert media_format("application/x-protobuf") is Format.PROTOBUF
    assert media_format("application/protobuf; charset=binary") is Format.PROTOBUF
    assert media_format("Application/JSON; charset=utf-8") is Format.JSON
    assert media_format("text/plain") is None
    assert media_format(None) is None


def test_responses_set_partial_success_only_when_something_was_refused() -> None:
    ok = ExportLogsServiceResponse.FromString(encode_response(Signal.LOGS, Format.PROTOBUF))
    assert not ok.HasField("partial_success")
    assert json.loads(encode_response(Signal.LOGS, Format.JSON)) == {}
    partial = ExportTraceServiceResponse.FromString(encode_response(Signal.TRACES, Format.PROTOBUF, 2, "bad ids"))
    assert partial.partial_success.rejected_spans == 2
    assert partial.partial_success.error_message == "bad ids"
    as_json = json.loads(encode_response(Signal.METRICS, Format.JSON, 3, "nameless"))
    assert as_json == {"partialSuccess": {"rejectedDataPoints": "3", "errorMessage": "nameless"}}


def test_error_bodies_are_google_rpc_status() -> None:
    for fmt in Format:
        assert decode_status(fmt, encode_status(fmt, 429, "slow down")) == (8, "slow down")


def test_invalid_utf8_in_a_json_body_is_a_400_not_a_crash() -> None:
    """Found by tests/reliability/test_fuzz_otlp.py: msgspec reports invalid UTF-8 as UnicodeDecodeError."""
    from bridge.receiver.decode import Format, Rejected, Signal, parse_request

    for body in (b'{"\\x80": 1}'.replace(b"\\x80", b"\x80"), b'{"resourceLogs": ["\xff"]}'):
        try:
            parse_request(Signal.LOGS, Format.JSON, body)
        except Rejected as exc:
            assert exc.status == 400 and "not valid JSON" in exc.reason
        else:
            raise AssertionError("accepted invalid UTF-8")
