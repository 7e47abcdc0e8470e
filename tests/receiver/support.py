"""Helpers for the receiver tests: a receiver on an ephemeral port, a raw HTTP client,
a recording proxy that keeps what a real sender sent, and independent decoding of it."""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import h11

from bridge.config.model import OtlpReceiverConfig
from bridge.config.paths import DataDir
from bridge.receiver import auth
from bridge.receiver.receiver import ReceiverService
from bridge.store.db import Database

HEADER = auth.HEADER_NAME


@dataclass
class Running:
    service: ReceiverService
    db: Database
    key: str
    emitted: list[tuple[str, Any]]
    data_dir: Path

    @property
    def endpoint(self) -> str:
        assert self.service.endpoint is not None
        return self.service.endpoint

    def rows(self, where: str = "1=1", params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        """Rows of the telemetry store (the receiver's decoder process writes it)."""
        return telemetry_rows(self.data_dir, where, params)

    def count(self, where: str = "1=1", params: tuple[Any, ...] = ()) -> int:
        return len(self.rows(where, params))


def telemetry_rows(data_dir: Path, where: str = "1=1", params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """``otel_records_full`` rows (with their resources) of a data dir's telemetry store ([] before any)."""
    path = DataDir(data_dir).telemetry
    if not path.exists():
        return []
    with contextlib.closing(sqlite3.connect(path, timeout=10)) as conn:
        cur = conn.execute(f"SELECT * FROM otel_records_full WHERE {where} ORDER BY id", params)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


@asynccontextmanager
async def running_receiver(
    tmp_path: Path,
    *,
    ingest: Callable[[], bool] = lambda: True,
    clock: Callable[[], float] | None = None,
    decoder: Any = None,
    **config: Any,
) -> AsyncIterator[Running]:
    """A started :class:`ReceiverService` on 127.0.0.1:0 with its own database."""
    data_dir = tmp_path / "data"
    data_dir.mkdir(exist_ok=True)
    db = Database(data_dir / "capture.sqlite3")
    emitted: list[tuple[str, Any]] = []
    kwargs: dict[str, Any] = {"clock": clock} if clock is not None else {}
    if decoder is not None:
        kwargs["decoder"] = decoder
    service = ReceiverService(
        config=OtlpReceiverConfig(**{"port": 0, **config}),
        db=db,
        key_path=data_dir / "otlp.key",
        runtime_path=data_dir / "runtime.json",
        emit=lambda method, params: emitted.append((method, params)),
        ingest_enabled=ingest,
        **kwargs,
    )
    try:
        async with anyio.create_task_group() as tg:
            await service.start(tg)
            key = auth.read_key(data_dir / "otlp.key")
            assert key is not None
            try:
                yield Running(service, db, key, emitted, data_dir)
            finally:
                await service.close()
                tg.cancel_scope.cancel()
    finally:
        db.close()


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def status_message(self) -> str:
        """The ``google.rpc.Status`` message of an error body."""
        from bridge.receiver.decode import Format, decode_status

        fmt = Format.JSON if self.headers.get("content-type", "").startswith("application/json") else Format.PROTOBUF
        return decode_status(fmt, self.body)[1]


def _host_port(endpoint: str) -> tuple[str, int]:
    hostport = endpoint.split("://", 1)[1].rstrip("/")
    host, port = hostport.rsplit(":", 1)
    return host, int(port)


async def post(
    endpoint: str,
    path: str,
    body: bytes,
    *,
    key: str | None,
    content_type: str = "application/x-protobuf",
    headers: dict[str, str] | None = None,
    method: str = "POST",
    timeout: float = 30,
) -> Reply:
    """One request on a fresh connection, with h11 as the client; the whole body is sent first."""
    host, port = _host_port(endpoint)
    all_headers = [("host", f"{host}:{port}"), ("content-type", content_type), ("content-length", str(len(body)))]
    if key is not None:
        all_headers.append((HEADER, key))
    all_headers += list((headers or {}).items())
    conn = h11.Connection(h11.CLIENT)
    with anyio.fail_after(timeout):
        async with await anyio.connect_tcp(host, port) as stream:
            await stream.send(conn.send(h11.Request(method=method, target=path, headers=all_headers)))
            for start in range(0, len(body), 1 << 20):
                try:
                    await stream.send(conn.send(h11.Data(data=body[start : start + (1 << 20)])))
                except (anyio.BrokenResourceError, ConnectionResetError):
                    break
            else:
                await stream.send(conn.send(h11.EndOfMessage()))
            response: h11.Response | None = None
            chunks: list[bytes] = []
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    try:
                        data = await stream.receive(65536)
                    except anyio.EndOfStream:
                        data = b""
                    conn.receive_data(data)
                elif isinstance(event, h11.Response):
                    response = event
                elif isinstance(event, h11.Data):
                    chunks.append(bytes(event.data))
                elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                    break
    assert response is not None, "no response"
    hdrs = {k.decode().lower(): v.decode() for k, v in response.headers}
    return Reply(response.status_code, hdrs, b"".join(chunks))


# -- a recording proxy between a real sender and the receiver ------------------------------


@dataclass
class Captured:
    path: str
    headers: dict[str, str]
    body: bytes  # as sent (maybe gzipped)

    @property
    def plain(self) -> bytes:
        if self.headers.get("content-encoding", "").lower() == "gzip":
            return gzip.decompress(self.body)
        return self.body

    @property
    def is_json(self) -> bool:
        return self.headers.get("content-type", "").startswith("application/json")


@dataclass
class RecordingProxy:
    """Forwards TCP to ``target`` and keeps every byte the clients sent, per connection."""

    target: tuple[str, int]
    port: int = 0
    streams: list[bytearray] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def serve(self, *, task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED) -> None:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        async with listener:
            self.port = listener.listeners[0].extra(anyio.abc.SocketAttribute.local_port)
            task_status.started(self.port)
            await listener.serve(self._connection)

    async def _connection(self, client: anyio.abc.SocketStream) -> None:
        sent = bytearray()
        self.streams.append(sent)
        async with client, await anyio.connect_tcp(*self.target) as upstream:

            async def pump(src: anyio.abc.SocketStream, dst: anyio.abc.SocketStream, keep: bytearray | None) -> None:
                try:
                    async for chunk in src:
                        if keep is not None:
                            keep += chunk
                        await dst.send(chunk)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                    pass
                finally:
                    tg.cancel_scope.cancel()

            async with anyio.create_task_group() as tg:
                tg.start_soon(pump, client, upstream, sent)
                tg.start_soon(pump, upstream, client, None)

    def requests(self) -> list[Captured]:
        """Every complete request the clients sent, parsed from the recorded bytes."""
        out: list[Captured] = []
        for raw in self.streams:
            conn = h11.Connection(h11.SERVER)
            conn.receive_data(bytes(raw))
            request: h11.Request | None = None
            body = bytearray()
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA or event is h11.PAUSED or isinstance(event, h11.ConnectionClosed):
                    break
                if isinstance(event, h11.Request):
                    request, body = event, bytearray()
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    assert request is not None
                    headers = {k.decode().lower(): v.decode() for k, v in request.headers}
                    out.append(Captured(request.target.decode().split("?")[0], headers, bytes(body)))
                    conn.send(h11.Response(status_code=200, headers=[("content-length", "0")]))
                    conn.send(h11.EndOfMessage())
                    conn.start_next_cycle()
        return out


# -- independent decoding of captured requests (not through the receiver's own code) -------------


def _hex_to_b64(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: (
                base64.b64encode(bytes.fromhex(v)).decode()
                if k in ("traceId", "spanId", "parentSpanId")
                else _hex_to_b64(v)
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_hex_to_b64(v) for v in value]
    return value


def parse_captured(captured: Captured) -> Any:
    from google.protobuf import json_format
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    cls = {"/v1/logs": ExportLogsServiceRequest, "/v1/traces": ExportTraceServiceRequest}.get(
        captured.path, ExportMetricsServiceRequest
    )
    message = cls()
    if captured.is_json:
        json_format.ParseDict(_hex_to_b64(json.loads(captured.plain)), message, ignore_unknown_fields=True)
    else:
        message.ParseFromString(captured.plain)
    return message


def attrs_of(pairs: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in pairs:
        kind = kv.value.WhichOneof("value")
        out[kv.key] = (
            getattr(kv.value, kind) if kind in ("string_value", "int_value", "bool_value", "double_value") else kind
        )
    return out


@dataclass
class Sent:
    """What a sender sent, element by element, decoded independently of the receiver."""

    logs: list[tuple[dict[str, Any], Any]] = field(default_factory=list)  # (attributes, LogRecord)
    spans: list[tuple[str, str, str]] = field(default_factory=list)  # (trace hex, span hex, name)
    points: list[str] = field(default_factory=list)  # metric name per data point
    json_requests: int = 0
    protobuf_requests: int = 0


def sent_by(captured: list[Captured]) -> Sent:
    sent = Sent()
    for request in captured:
        if request.is_json:
            sent.json_requests += 1
        else:
            sent.protobuf_requests += 1
        message = parse_captured(request)
        if request.path == "/v1/logs":
            for rl in message.resource_logs:
                for sl in rl.scope_logs:
                    sent.logs += [(attrs_of(r.attributes), r) for r in sl.log_records]
        elif request.path == "/v1/traces":
            for rs in message.resource_spans:
                for ss in rs.scope_spans:
                    sent.spans += [(s.trace_id.hex(), s.span_id.hex(), s.name) for s in ss.spans]
        else:
            for rm in message.resource_metrics:
                for sm in rm.scope_metrics:
                    for metric in sm.metrics:
                        kind = metric.WhichOneof("data")
                        if kind:
                            sent.points += [metric.name] * len(getattr(metric, kind).data_points)
    return sent


async def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    with anyio.move_on_after(timeout):
        while not predicate():
            await anyio.sleep(0.05)
    assert predicate(), f"timed out after {timeout}s waiting for {what}"


# -- real peers ---------------------------------------------------------------------------


def require_fence() -> None:
    """Fail (never skip) when a real peer could reach anything but loopback."""
    import pytest

    from bridge.peers import fence

    if not fence.isolated():
        pytest.fail(
            "not inside the loopback-only fence: run real-peer tests as "
            "`.venv/bin/python -m bridge.peers.fence -- .venv/bin/pytest tests/receiver` "
            f"(interfaces up: {fence.up_interfaces()})"
        )


@dataclass
class Finished:
    returncode: int
    stdout: str
    stderr: str


async def run_peer(argv: list[str], env: dict[str, str], cwd: Path, timeout: float = 120) -> Finished:
    """Run a real peer in its own process group; the whole group is killed if it overruns."""
    import os
    import signal
    import subprocess

    require_fence()
    out, err = cwd / "peer-stdout.log", cwd / "peer-stderr.log"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = await anyio.open_process(
            argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, start_new_session=True
        )
        try:
            with anyio.fail_after(timeout):
                await process.wait()
        finally:
            if process.returncode is None:
                os.killpg(process.pid, signal.SIGKILL)
                await process.wait()
    assert process.returncode is not None
    return Finished(process.returncode, out.read_text(errors="replace"), err.read_text(errors="replace"))


async def replay(rx: Running, captured: list[Captured]) -> list[int]:
    """Send every captured request to the receiver again, as it was sent (a redelivery)."""
    statuses = []
    for request in captured:
        headers = {k: v for k, v in request.headers.items() if k == "content-encoding"}
        reply = await post(
            rx.endpoint, request.path, request.body, key=rx.key, content_type=request.headers["content-type"],
            headers=headers,
        )  # fmt: skip
        statuses.append(reply.status)
    return statuses
