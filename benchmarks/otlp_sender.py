"""A telemetry flood for the OTLP scenario: protobuf log batches posted to the bridge's receiver.

Runs as its own process (so its work does not share the host's GIL). The
records are codex 0.169.0's own log events (fixtures/otlp/codex-binary), each
sent with a fresh timestamp so none is a duplicate. ``--connections``
kept-alive connections post batches of ``--batch`` records back to back for
``--seconds``; the result, printed as JSON, counts records in 200 answers and
the status of every answer, with the CLOCK_MONOTONIC window it ran in.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "otlp" / "codex-binary" / "003-logs.pb"
_serial = itertools.count()
_serial_lock = threading.Lock()


def template(batch: int) -> tuple[ExportLogsServiceRequest, list[tuple[object, object | None]]]:
    """A request of ``batch`` codex log records, and per record (record, its event.timestamp value)."""
    source = ExportLogsServiceRequest()
    source.ParseFromString(FIXTURE.read_bytes())
    events = [lr for rl in source.resource_logs for sl in rl.scope_logs for lr in sl.log_records
              if any(a.key == "event.name" for a in lr.attributes)]  # fmt: skip
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    resource_logs.resource.CopyFrom(source.resource_logs[0].resource)
    scope_logs = resource_logs.scope_logs.add()
    scope_logs.scope.name = "codex_otel.log_only"
    handles = []
    for n in range(batch):
        record = scope_logs.log_records.add()
        record.CopyFrom(events[n % len(events)])
        stamp = next((a.value for a in record.attributes if a.key == "event.timestamp"), None)
        handles.append((record, stamp))
    return request, handles


def body(request: ExportLogsServiceRequest, handles: list[tuple[object, object | None]]) -> bytes:
    with _serial_lock:
        first = next(_serial)
        for _ in range(len(handles) - 1):
            next(_serial)
    base = time.time_ns()
    for n, (record, stamp) in enumerate(handles):
        ns = base + first + n
        record.time_unix_nano = ns  # type: ignore[attr-defined]
        record.observed_time_unix_nano = ns  # type: ignore[attr-defined]
        if stamp is not None:
            iso = datetime.fromtimestamp(ns / 1e9, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
            stamp.string_value = iso  # type: ignore[attr-defined]
    data: bytes = request.SerializeToString()
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint", required=True, help="the receiver's base URL (http://127.0.0.1:PORT)")
    parser.add_argument("--key", required=True)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--connections", type=int, default=2)
    args = parser.parse_args()
    url = urlsplit(args.endpoint)
    headers = {"Content-Type": "application/x-protobuf", "x-capture-bridge-key": args.key}
    statuses: dict[int, int] = {}
    accepted = [0]
    lock = threading.Lock()
    start = time.monotonic_ns()
    deadline = start + int(args.seconds * 1e9)

    def sender() -> None:
        request, handles = template(args.batch)
        conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port or 4318, timeout=30)
        while time.monotonic_ns() < deadline:
            conn.request("POST", "/v1/logs", body(request, handles), headers)
            response = conn.getresponse()
            response.read()
            with lock:
                statuses[response.status] = statuses.get(response.status, 0) + 1
                if response.status == 200:
                    accepted[0] += args.batch
            if response.will_close:
                conn.close()
                conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port or 4318, timeout=30)
        conn.close()

    threads = [threading.Thread(target=sender) for _ in range(args.connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    end = time.monotonic_ns()
    print(json.dumps({"records": accepted[0], "statuses": statuses, "startNs": start, "endNs": end}))


if __name__ == "__main__":
    main()
