"""Test side of the enrichment export: an OTLP/HTTP receiver and real Applied batches.

:class:`OtlpSink` is a tiny OTLP/HTTP receiver (stdlib ``http.server`` on a
thread) that decodes request bodies with the official ``opentelemetry-proto``
messages. It can reserve its port first (bound, not listening: connections
are refused, like a collector that is down) and start listening on that same
port later.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from bridge.capture.events import CaptureEvent
from bridge.capture.normalize import normalize
from bridge.capture.rows import Applied
from bridge.capture.store import CaptureStore
from bridge.store.db import Database
from tests.capture.reference import notifications


def value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [value(v) for v in any_value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: value(kv.value) for kv in any_value.kvlist_value.values}
    return getattr(any_value, kind)


def attrs(key_values: Any) -> dict[str, Any]:
    return {kv.key: value(kv.value) for kv in key_values}


@dataclass
class Span:
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    attributes: dict[str, Any]
    start_ns: int
    end_ns: int
    status_code: int
    resource: dict[str, Any]


@dataclass
class Log:
    event_name: str
    attributes: dict[str, Any]
    body: Any
    trace_id: str
    span_id: str
    time_ns: int
    severity_text: str
    resource: dict[str, Any]


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    size: int


@dataclass
class OtlpSink:
    """Collects what arrives; ``answer(path) -> int`` may force an HTTP status."""

    spans: list[Span] = field(default_factory=list)
    logs: list[Log] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    answer: Callable[[str], int] = lambda _path: 200
    port: int = 0
    _sock: socket.socket | None = None
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reserve(self) -> OtlpSink:
        """Bind a port without listening: connections to it are refused until :meth:`start`."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self._sock = sock
        self.port = sock.getsockname()[1]
        return self

    def start(self) -> OtlpSink:
        if self._sock is None:
            self.reserve()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = sink.answer(self.path)
                if status == 200:
                    status, reply = sink._accept(self.path, dict(self.headers.items()), body)
                else:
                    reply = b""
                self.send_response(status)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler, bind_and_activate=False)
        server.socket.close()
        assert self._sock is not None
        server.socket = self._sock
        server.server_activate()
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
            self._sock = None
        elif self._sock is not None:
            self._sock.close()
            self._sock = None

    def _accept(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        if headers.get("Content-Type") != "application/x-protobuf":
            return 415, b""
        with self._lock:
            self.requests.append(Request(path, {k.lower(): v for k, v in headers.items()}, len(body)))
            if path == "/v1/traces":
                req = ExportTraceServiceRequest.FromString(body)
                for rs in req.resource_spans:
                    resource = attrs(rs.resource.attributes)
                    for ss in rs.scope_spans:
                        for s in ss.spans:
                            self.spans.append(
                                Span(
                                    s.trace_id.hex(),
                                    s.span_id.hex(),
                                    s.parent_span_id.hex(),
                                    s.name,
                                    attrs(s.attributes),
                                    s.start_time_unix_nano,
                                    s.end_time_unix_nano,
                                    s.status.code,
                                    resource,
                                )
                            )
                return 200, ExportTraceServiceResponse().SerializeToString()
            if path == "/v1/logs":
                lreq = ExportLogsServiceRequest.FromString(body)
                for rl in lreq.resource_logs:
                    resource = attrs(rl.resource.attributes)
                    for sl in rl.scope_logs:
                        for r in sl.log_records:
                            self.logs.append(
                                Log(
                                    r.event_name,
                                    attrs(r.attributes),
                                    value(r.body),
                                    r.trace_id.hex(),
                                    r.span_id.hex(),
                                    r.time_unix_nano,
                                    r.severity_text,
                                    resource,
                                )
                            )
                return 200, ExportLogsServiceResponse().SerializeToString()
        return 404, b""

    def wait(self, predicate: Callable[[OtlpSink], bool], timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if predicate(self):
                    return
            time.sleep(0.02)
        got = f"{len(self.spans)} spans, {len(self.logs)} logs, {len(self.requests)} requests"
        raise AssertionError(f"the receiver did not get what was expected within {timeout} s: {got}")


# ------------------------------------------------------------------ real Applied batches


def stream_events(scenario: str) -> list[CaptureEvent]:
    out: list[CaptureEvent] = []
    for note in notifications(scenario):
        assert note.method is not None
        ev = normalize(note.method, bytes(note.params), note.emittedAtMs)
        if ev is not None:
            out.append(ev)
    return out


def applied_batches(scenario: str, db_path: Path, batch: int = 5) -> Iterator[list[Applied]]:
    """The recorded stream committed in batches of ``batch`` events, as the pipeline would."""
    store = CaptureStore(Database(db_path))
    events = stream_events(scenario)
    for i in range(0, len(events), batch):
        yield store.apply(events[i : i + batch])


def applied(scenario: str, db_path: Path) -> list[Applied]:
    return [a for b in applied_batches(scenario, db_path, batch=1000) for a in b]
