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
import struct
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "otlp" / "codex-binary" / "003-logs.pb"
_serial = itertools.count()
_serial_lock = threading.Lock()


class Batches:
    """Request bodies of ``batch`` codex log records, each record with fresh times.

    The request is serialised once, with a placeholder in every field that changes
    (the record's two fixed64 times and its ``event.timestamp`` text, always 27
    characters); a body is then that template with the placeholders overwritten in
    place. Re-serialising the message for every request cost this process a tenth of
    a core during the flood, CPU the receiver under test shares on a small machine; a
    real exporter (codex's, in Rust) spends far less on a batch.
    """

    STAMP = 27  # len("2026-12-04T12:35:09.259917Z")

    def __init__(self, batch: int) -> None:
        source = ExportLogsServiceRequest()
        source.ParseFromString(FIXTURE.read_bytes())
        events = [lr for rl in source.resource_logs for sl in rl.scope_logs for lr in sl.log_records
                  if any(a.key == "event.name" for a in lr.attributes)]  # fmt: skip
        request = ExportLogsServiceRequest()
        resource_logs = request.resource_logs.add()
        resource_logs.resource.CopyFrom(source.resource_logs[0].resource)
        scope_logs = resource_logs.scope_logs.add()
        scope_logs.scope.name = "codex_otel.log_only"
        for n in range(batch):
            record = scope_logs.log_records.add()
            record.CopyFrom(events[n % len(events)])
            record.time_unix_nano = _PLACEHOLDER_NS + 2 * n
            record.observed_time_unix_nano = _PLACEHOLDER_NS + 2 * n + 1
            for a in record.attributes:
                if a.key == "event.timestamp":
                    a.value.string_value = f"PLACEHOLDER{n:016d}"
        self.template = request.SerializeToString()
        self.batch = batch
        self.times = [self._offset(struct.pack("<Q", _PLACEHOLDER_NS + k)) for k in range(2 * batch)]
        self.stamps = [o for n in range(batch) if (o := self.template.find(f"PLACEHOLDER{n:016d}".encode())) >= 0]

    def _offset(self, needle: bytes) -> int:
        at = self.template.find(needle)
        if at < 0 or self.template.find(needle, at + 1) >= 0:
            raise RuntimeError("a placeholder is not where exactly one field is")
        return at

    def body(self) -> bytes:
        with _serial_lock:
            first = next(_serial)
            for _ in range(2 * self.batch - 1):  # a serial for each of a record's two times
                next(_serial)
        base = time.time_ns() + first
        data = bytearray(self.template)
        for k, at in enumerate(self.times):  # record n: time at k = 2n, observed at 2n + 1 (never a duplicate)
            struct.pack_into("<Q", data, at, base + k)
        iso = datetime.fromtimestamp(base / 1e9, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        stamp = iso.encode()
        assert len(stamp) == self.STAMP
        for at in self.stamps:
            data[at : at + self.STAMP] = stamp
        return bytes(data)


_PLACEHOLDER_NS = 0x5EED_0000_0000_0000


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
        batches = Batches(args.batch)
        conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port or 4318, timeout=30)
        while time.monotonic_ns() < deadline:
            conn.request("POST", "/v1/logs", batches.body(), headers)
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
