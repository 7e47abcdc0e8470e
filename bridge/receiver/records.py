"""Decoded OTLP requests flattened into keyed records: pure, no I/O.

Every log record, span and metric data point becomes one :class:`OtelRecord`
with the identity the capture layer needs (provider, conversation/session,
turn, item, call id, event name, time) and a **dedup key**, so at-least-once
redelivery is stored once:

| what | key |
|---|---|
| Claude Code log event | ``claude:{session.id}:{event.sequence}`` |
| codex log event | ``codex:{conversation.id}:{event.timestamp}:{event.name}:{sha256(attributes, body, times)}`` |
| any span | ``span:{trace_id}:{span_id}`` (hex) |
| any metric point | ``metric:{name}:{sha256(resource, scope, point attributes)}:{start}:{time}`` |
| any other log record | ``log:{sha256(resource, scope, the whole record)}`` |

The hashes are over a canonical JSON form of the decoded values, so the same
record sent as protobuf or as OTLP/JSON gets the same key. A codex key has its
time before its name, so one conversation's keys sort in the order they arrive
and the store's unique index grows at one end (each request then rewrites one
of its pages instead of one per event name). Elements OTLP
calls invalid (spans without proper ids, points of a nameless metric) are
rejected and counted for the partial-success answer.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Iterator
from typing import Any

import msgspec

from bridge.receiver.decode import Signal

CODEX = "codex"
CLAUDE = "claude_code"
OTHER = "other"

_canonical = msgspec.json.Encoder(order="sorted")
_PREFIXES = ("codex.", "claude_code.")


class OtelRecord(msgspec.Struct):
    dedup_key: str
    signal: str  # "log" | "span" | "metric"
    provider: str  # CODEX | CLAUDE | OTHER
    name: str | None  # event name (full form), span name or metric name
    time_ns: int | None
    conversation_id: str | None = None  # codex conversation.id (= threadId) / Claude session.id
    turn_id: str | None = None  # codex turn.id / Claude prompt.id
    item_id: str | None = None
    call_id: str | None = None
    sequence: int | None = None  # Claude event.sequence
    trace_id: str | None = None
    span_id: str | None = None
    service_name: str | None = None
    scope_name: str | None = None
    body: Any = None
    attributes: dict[str, Any] = msgspec.field(default_factory=dict)
    resource: dict[str, Any] = msgspec.field(default_factory=dict)
    detail: dict[str, Any] = msgspec.field(default_factory=dict)  # span timing/status, metric point values


class Extracted(msgspec.Struct):
    records: list[OtelRecord] = msgspec.field(default_factory=list)
    rejected: int = 0
    problems: list[str] = msgspec.field(default_factory=list)

    def reject(self, count: int, problem: str) -> None:
        self.rejected += count
        if problem not in self.problems:
            self.problems.append(problem)

    @property
    def error_message(self) -> str:
        return "; ".join(self.problems)


# -- OTLP values ------------------------------------------------------------


def any_value(value: Any) -> Any:
    """An ``AnyValue`` as plain JSON-able data (bytes become ``{"bytes": base64}``)."""
    return _of_kind(value, value.WhichOneof("value"))


def _of_kind(value: Any, kind: str | None) -> Any:
    if kind is None:
        return None
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        return value.double_value
    if kind == "bytes_value":
        return {"bytes": base64.b64encode(value.bytes_value).decode("ascii")}
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    return None


def attributes(pairs: Iterable[Any]) -> dict[str, Any]:
    # Most attributes are non-empty strings: one protobuf access tells those (a telemetry flood reads
    # ~11 a record, and asking the oneof which field is set first costs as much again).
    out: dict[str, Any] = {}
    for kv in pairs:
        value = kv.value
        text = value.string_value  # "" for every other kind, and for an empty string
        out[kv.key] = text if text or value.HasField("string_value") else _of_kind(value, value.WhichOneof("value"))
    return out


def _digest(value: Any) -> str:
    return hashlib.sha256(_canonical.encode(value)).hexdigest()


def _str(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


# -- providers ----------------------------------------------------------------


def provider_of(resource: dict[str, Any], scope_name: str, name: str | None) -> str:
    """Who sent it: by event/metric/span name prefix, else by service and scope name."""
    if name:
        if name.startswith("codex."):
            return CODEX
        if name.startswith("claude_code."):
            return CLAUDE
    service = str(resource.get("service.name") or "").lower()
    if scope_name.startswith("com.anthropic.claude_code") or service in ("claude-code", "claude_code"):
        return CLAUDE
    if service.startswith("codex") or scope_name.startswith("codex"):
        return CODEX
    return OTHER


def log_event_name(record: Any, attrs: dict[str, Any], body: Any) -> str | None:
    """The record's event name in its full, provider-prefixed form when there is one.

    Claude Code puts ``claude_code.user_prompt`` in the body and the short
    ``user_prompt`` in ``event.name``; codex puts ``codex.user_prompt`` in
    ``event.name``; newer SDKs use the LogRecord's own ``event_name`` field.
    """
    own = record.event_name
    if own and own.startswith(_PREFIXES):
        return own  # type: ignore[no-any-return]
    named = _str(attrs.get("event.name"))
    if named and named.startswith(_PREFIXES):
        return named
    if isinstance(body, str) and body.startswith(_PREFIXES):
        return body
    return own or named


# -- logs ---------------------------------------------------------------------


def _log_record(record: Any, resource: dict[str, Any], service: str | None, scope: str) -> OtelRecord:
    attrs = attributes(record.attributes)
    body = any_value(record.body) if record.HasField("body") else None
    name = log_event_name(record, attrs, body)
    provider = provider_of(resource, scope, name)
    time_ns = record.time_unix_nano or record.observed_time_unix_nano or None
    out = OtelRecord(
        dedup_key="",
        signal="log",
        provider=provider,
        name=name,
        time_ns=time_ns,
        trace_id=record.trace_id.hex() or None,
        span_id=record.span_id.hex() or None,
        service_name=service,
        scope_name=scope or None,
        body=body,
        attributes=attrs,
        resource=resource,
        detail={"severityNumber": record.severity_number, "severityText": record.severity_text or None},
    )
    if provider == CLAUDE:
        out.conversation_id = _str(attrs.get("session.id"))
        out.turn_id = _str(attrs.get("prompt.id"))
        out.call_id = _str(attrs.get("tool_use_id"))
        out.item_id = _str(attrs.get("message.id"))
        out.sequence = _int(attrs.get("event.sequence"))
        if out.conversation_id and out.sequence is not None:
            out.dedup_key = f"claude:{out.conversation_id}:{out.sequence}"
    elif provider == CODEX:
        out.conversation_id = _str(attrs.get("conversation.id"))
        out.turn_id = _str(attrs.get("turn.id"))
        out.item_id = _str(attrs.get("item.id"))
        out.call_id = _str(attrs.get("call_id"))
        if out.conversation_id:
            stamp = _str(attrs.get("event.timestamp")) or str(time_ns or 0)
            # the record's own nanosecond times tell apart two records whose attributes are alike
            # (codex logs one identical codex.sse_event per text delta, often within the same ms)
            times = [record.time_unix_nano, record.observed_time_unix_nano]
            digest = _digest({"attributes": attrs, "body": body, "times": times})
            out.dedup_key = f"codex:{out.conversation_id}:{stamp}:{name or ''}:{digest}"
    if not out.dedup_key:
        whole = {
            "resource": resource,
            "scope": scope,
            "time": record.time_unix_nano,
            "observed": record.observed_time_unix_nano,
            "severity": record.severity_number,
            "name": name,
            "body": body,
            "attributes": attrs,
            "trace": out.trace_id,
            "span": out.span_id,
        }
        out.dedup_key = f"log:{_digest(whole)}"
    return out


def extract_logs(request: Any) -> Extracted:
    result = Extracted()
    for resource_logs in request.resource_logs:
        resource = attributes(resource_logs.resource.attributes)
        service = _str(resource.get("service.name"))
        for scope_logs in resource_logs.scope_logs:
            scope = scope_logs.scope.name
            for record in scope_logs.log_records:
                if len(record.trace_id) not in (0, 16) or len(record.span_id) not in (0, 8):
                    result.reject(1, "log records with a trace_id other than 16 bytes or a span_id other than 8")
                    continue
                result.records.append(_log_record(record, resource, service, scope))
    return result


# -- traces -------------------------------------------------------------------


def _span_identity(out: OtelRecord, attrs: dict[str, Any]) -> None:
    if out.provider == CLAUDE:
        out.conversation_id = _str(attrs.get("session.id"))
        out.turn_id = _str(attrs.get("prompt.id"))
        out.call_id = _str(attrs.get("tool_use_id"))
    else:
        # codex's tracing layer also sets an integer ``thread.id`` (the OS thread): only a string is a thread id.
        thread = attrs.get("thread.id")
        out.conversation_id = _str(attrs.get("conversation.id") or (thread if isinstance(thread, str) else None))
        out.turn_id = _str(attrs.get("turn.id") or attrs.get("turn_id"))
        out.item_id = _str(attrs.get("item.id"))
        out.call_id = _str(attrs.get("call_id"))


def extract_traces(request: Any) -> Extracted:
    result = Extracted()
    for resource_spans in request.resource_spans:
        resource = attributes(resource_spans.resource.attributes)
        service = _str(resource.get("service.name"))
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope.name
            for span in scope_spans.spans:
                valid_ids = len(span.trace_id) == 16 and len(span.span_id) == 8
                if not valid_ids or not any(span.trace_id) or not any(span.span_id):
                    result.reject(1, "spans need a non-zero 16-byte trace_id and 8-byte span_id")
                    continue
                attrs = attributes(span.attributes)
                trace_id, span_id = span.trace_id.hex(), span.span_id.hex()
                out = OtelRecord(
                    dedup_key=f"span:{trace_id}:{span_id}",
                    signal="span",
                    provider=provider_of(resource, scope, span.name),
                    name=span.name or None,
                    time_ns=span.start_time_unix_nano or None,
                    trace_id=trace_id,
                    span_id=span_id,
                    service_name=service,
                    scope_name=scope or None,
                    attributes=attrs,
                    resource=resource,
                    detail={
                        "parentSpanId": span.parent_span_id.hex() or None,
                        "kind": span.kind,
                        "startTimeUnixNano": span.start_time_unix_nano,
                        "endTimeUnixNano": span.end_time_unix_nano,
                        "status": {"code": span.status.code, "message": span.status.message or None},
                        "events": [
                            {"name": e.name, "timeUnixNano": e.time_unix_nano, "attributes": attributes(e.attributes)}
                            for e in span.events
                        ],
                    },
                )
                _span_identity(out, attrs)
                result.records.append(out)
    return result


# -- metrics ------------------------------------------------------------------


def _points(metric: Any) -> Iterator[tuple[str, Any, dict[str, Any]]]:
    kind = metric.WhichOneof("data")
    if kind is None:
        return
    data = getattr(metric, kind)
    for point in data.data_points:
        detail: dict[str, Any] = {"type": kind}
        if kind in ("sum", "gauge"):
            value_kind = point.WhichOneof("value")
            detail["value"] = getattr(point, value_kind) if value_kind else None
            if kind == "sum":
                detail["isMonotonic"] = data.is_monotonic
        elif kind == "summary":
            detail["count"] = point.count
            detail["sum"] = point.sum
        else:  # histogram, exponential_histogram
            detail["count"] = point.count
            detail["sum"] = point.sum if point.HasField("sum") else None
            if kind == "histogram":
                detail["bucketCounts"] = list(point.bucket_counts)
                detail["explicitBounds"] = list(point.explicit_bounds)
        if kind in ("sum", "histogram", "exponential_histogram"):
            detail["aggregationTemporality"] = data.aggregation_temporality
        yield kind, point, detail


def extract_metrics(request: Any) -> Extracted:
    result = Extracted()
    for resource_metrics in request.resource_metrics:
        resource = attributes(resource_metrics.resource.attributes)
        service = _str(resource.get("service.name"))
        for scope_metrics in resource_metrics.scope_metrics:
            scope = scope_metrics.scope.name
            for metric in scope_metrics.metrics:
                points = list(_points(metric))
                if not metric.name:
                    result.reject(len(points), "data points of a metric without a name")
                    continue
                for _kind, point, detail in points:
                    attrs = attributes(point.attributes)
                    series = _digest({"resource": resource, "scope": scope, "attributes": attrs})
                    start, time = point.start_time_unix_nano, point.time_unix_nano
                    out = OtelRecord(
                        dedup_key=f"metric:{metric.name}:{series}:{start}:{time}",
                        signal="metric",
                        provider=provider_of(resource, scope, metric.name),
                        name=metric.name,
                        time_ns=time or None,
                        service_name=service,
                        scope_name=scope or None,
                        attributes=attrs,
                        resource=resource,
                        detail={**detail, "unit": metric.unit or None, "startTimeUnixNano": start},
                    )
                    _span_identity(out, attrs)
                    result.records.append(out)
    return result


def extract(signal: Signal, request: Any) -> Extracted:
    """Every element of a decoded request as a keyed record (or a counted rejection)."""
    if signal is Signal.LOGS:
        return extract_logs(request)
    if signal is Signal.TRACES:
        return extract_traces(request)
    return extract_metrics(request)
