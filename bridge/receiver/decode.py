"""OTLP/HTTP bodies into the official ``opentelemetry-proto`` messages, and back.

Everything here is synchronous and CPU-bound on purpose: the receiver runs it
in a worker thread, so a 16 MiB body never stalls the event loop. Every
failure is a :class:`Rejected` carrying the HTTP status and a reason a
sender's operator can act on (OTLP/HTTP: 400 for bad data, 413 for too much,
415 for an unsupported format).
"""

from __future__ import annotations

import base64
import enum
import zlib
from dataclasses import dataclass
from typing import Any

from bridge.redact import redact_text

_REASON_MAX = 300
_ID_KEYS = frozenset({"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"})


class Format(enum.Enum):
    PROTOBUF = "protobuf"
    JSON = "json"

    @property
    def content_type(self) -> bytes:
        return b"application/x-protobuf" if self is Format.PROTOBUF else b"application/json"


class Signal(enum.Enum):
    LOGS = "logs"
    TRACES = "traces"
    METRICS = "metrics"

    @property
    def path(self) -> str:
        return f"/v1/{self.value}"

    @property
    def unit(self) -> str:
        """What one rejected element is called in OTLP's partial success."""
        return {"logs": "log records", "traces": "spans", "metrics": "data points"}[self.value]


SIGNAL_BY_PATH = {s.path: s for s in Signal}


@dataclass
class Rejected(Exception):
    """A request the receiver refuses: ``status`` is the HTTP status to answer."""

    status: int
    reason: str

    def __str__(self) -> str:
        return self.reason


def _reason(text: str) -> str:
    text = redact_text(" ".join(text.split()))
    return text if len(text) <= _REASON_MAX else text[: _REASON_MAX - 1] + "…"


def media_format(content_type: str | None) -> Format | None:
    """The body format named by a ``Content-Type`` header; ``None`` when unsupported."""
    if not content_type:
        return None
    media = content_type.split(";", 1)[0].strip().lower()
    if media in ("application/x-protobuf", "application/protobuf", "application/vnd.google.protobuf"):
        return Format.PROTOBUF
    if media == "application/json":
        return Format.JSON
    return None


def gunzip_bounded(data: bytes, limit: int) -> bytes:
    """Inflate a gzip body, refusing (413) as soon as the output passes ``limit``.

    ``max_length`` caps every inflate step, so a gzip bomb costs at most
    ``limit`` bytes of memory, never its expanded size. Concatenated gzip
    members (RFC 1952 allows them) are inflated in turn.
    """
    out = bytearray()
    pending = data
    while True:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            while True:
                chunk = inflater.decompress(pending, limit + 1 - len(out))
                out += chunk
                if len(out) > limit:
                    raise Rejected(413, f"Body inflates to more than {limit} bytes (otlpReceiver.maxBodyBytes).")
                pending = inflater.unconsumed_tail
                if inflater.eof or not pending:
                    break
        except zlib.error as exc:
            raise Rejected(400, _reason(f"Body is not valid gzip: {exc}.")) from exc
        if not inflater.eof:
            raise Rejected(400, "Body is not valid gzip: the stream is truncated.")
        pending = inflater.unused_data
        if not pending.strip(b"\0"):
            return bytes(out)


def _request_class(signal: Signal) -> Any:
    if signal is Signal.LOGS:
        from opentelemetry.proto.collector.logs.v1 import logs_service_pb2

        return logs_service_pb2.ExportLogsServiceRequest
    if signal is Signal.TRACES:
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

        return trace_service_pb2.ExportTraceServiceRequest
    from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2

    return metrics_service_pb2.ExportMetricsServiceRequest


def _response_class(signal: Signal) -> Any:
    if signal is Signal.LOGS:
        from opentelemetry.proto.collector.logs.v1 import logs_service_pb2

        return logs_service_pb2.ExportLogsServiceResponse
    if signal is Signal.TRACES:
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

        return trace_service_pb2.ExportTraceServiceResponse
    from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2

    return metrics_service_pb2.ExportMetricsServiceResponse


def warm_up() -> None:
    """Import the message modules ahead of the first request (off the event loop)."""
    for signal in Signal:
        _request_class(signal)
        _response_class(signal)
    from google.protobuf import json_format  # noqa: F401
    from google.rpc import status_pb2  # noqa: F401


def hex_ids_to_base64(value: Any, path: str = "$") -> Any:
    """OTLP/JSON's hex trace/span ids rewritten to the base64 ``json_format`` expects.

    Dict keys named like an id only ever hold ids in OTLP (attribute names are
    values of ``key``, never dict keys), so every such key is converted, at any
    depth: spans, links, log records and exemplars alike.
    """
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            where = f"{path}.{key}"
            if key in _ID_KEYS and isinstance(item, str):
                out[key] = _hex_to_base64(item, where)
            else:
                out[key] = hex_ids_to_base64(item, where)
        return out
    if isinstance(value, list):
        return [hex_ids_to_base64(item, f"{path}[{i}]") for i, item in enumerate(value)]
    return value


def _hex_to_base64(text: str, where: str) -> str:
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise Rejected(400, _reason(f"{where} must be a hex string (OTLP/JSON), got {text[:40]!r}.")) from None
    return base64.b64encode(raw).decode("ascii")


def parse_request(signal: Signal, fmt: Format, body: bytes) -> Any:
    """The ``Export*ServiceRequest`` in ``body``; :class:`Rejected` (400) when malformed."""
    message = _request_class(signal)()
    name = message.DESCRIPTOR.name
    if fmt is Format.PROTOBUF:
        from google.protobuf.message import DecodeError

        try:
            message.ParseFromString(body)
        except (DecodeError, RecursionError, ValueError) as exc:
            raise Rejected(400, _reason(f"Body is not a valid {name} protobuf: {exc}.")) from exc
        return message
    import msgspec
    from google.protobuf import json_format

    try:
        data = msgspec.json.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:  # invalid UTF-8 is not a DecodeError
        raise Rejected(400, _reason(f"Body is not valid JSON: {exc}.")) from exc
    if not isinstance(data, dict):
        raise Rejected(400, f"Body must be a JSON object holding a {name}.")
    try:
        json_format.ParseDict(hex_ids_to_base64(data), message, ignore_unknown_fields=True)
    except (json_format.ParseError, RecursionError, ValueError, TypeError) as exc:
        raise Rejected(400, _reason(f"Body is not a valid OTLP/JSON {name}: {exc}.")) from exc
    return message


def inflate(body: bytes, *, gzipped: bool, limit: int) -> bytes:
    """The request's bytes as sent, inflated (bounded) when gzipped; :class:`Rejected` (413) past ``limit``."""
    if gzipped:
        return gunzip_bounded(body, limit)
    if len(body) > limit:
        raise Rejected(413, f"Body of {len(body)} bytes exceeds {limit} bytes (otlpReceiver.maxBodyBytes).")
    return body


def decode_body(signal: Signal, fmt: Format, body: bytes, *, gzipped: bool, limit: int) -> Any:
    """Inflate (bounded) when gzipped, then parse: the whole decode step of one request."""
    return parse_request(signal, fmt, inflate(body, gzipped=gzipped, limit=limit))


def encode_response(signal: Signal, fmt: Format, rejected: int = 0, error_message: str = "") -> bytes:
    """An ``Export*ServiceResponse``; ``partial_success`` is set only when something was refused."""
    message = _response_class(signal)()
    if rejected or error_message:
        field = {Signal.LOGS: "rejected_log_records", Signal.TRACES: "rejected_spans"}.get(
            signal, "rejected_data_points"
        )
        setattr(message.partial_success, field, rejected)
        message.partial_success.error_message = error_message
    return _serialize(message, fmt)


# HTTP status -> google.rpc.Code, for the Status body of an error response.
_RPC_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 405: 12, 408: 4, 413: 3, 415: 3, 429: 8, 500: 13, 503: 14}


def encode_status(fmt: Format, http_status: int, message: str) -> bytes:
    """The ``google.rpc.Status`` body OTLP/HTTP puts in every error response."""
    from google.rpc import status_pb2

    status = status_pb2.Status(code=_RPC_CODES.get(http_status, 2), message=message)
    return _serialize(status, fmt)


def _serialize(message: Any, fmt: Format) -> bytes:
    if fmt is Format.PROTOBUF:
        data: bytes = message.SerializeToString()
        return data
    from google.protobuf import json_format

    text: str = json_format.MessageToJson(message, indent=None)
    return text.encode("utf-8")


def decode_status(fmt: Format, body: bytes) -> tuple[int, str]:
    """``(code, message)`` of an error body (for tests and diagnostics)."""
    from google.protobuf import json_format
    from google.rpc import status_pb2

    status = status_pb2.Status()
    if fmt is Format.PROTOBUF:
        status.ParseFromString(body)
    else:
        json_format.Parse(body.decode("utf-8"), status)
    return int(status.code), str(status.message)
