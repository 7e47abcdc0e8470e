"""A load generator in the place of codex, for the end-to-end stream benchmark.

Not a fake used by tests: it answers just the handshake, then writes
``FLOOD_FRAMES`` realistic stream frames (benchmarks/workload.py) as fast as
the pipe takes them, ending with the notification ``bench/done``.
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

from workload import frames


def main() -> None:
    total = int(os.environ.get("FLOOD_FRAMES", "200000"))
    deltas = int(os.environ.get("FLOOD_DELTAS", "120"))
    out = sys.stdout.buffer
    for raw in sys.stdin.buffer:
        msg = json.loads(raw)
        method, mid = msg.get("method"), msg.get("id")
        if method == "initialize":
            result: object = {"userAgent": "bench/0.169.0 (bench)", "codexHome": "/tmp", "platformFamily": "unix",
                              "platformOs": "linux"}  # fmt: skip
        elif method == "account/read":
            result = {"account": {"type": "apiKey"}, "requiresOpenaiAuth": True}
        elif method == "initialized":
            batch: list[bytes] = []
            for line in frames(total, deltas):
                batch.append(line)
                if len(batch) == 512:
                    out.write(b"\n".join(batch) + b"\n")
                    batch.clear()
            batch.append(b'{"method":"bench/done","params":{},"emittedAtMs":0}')
            out.write(b"\n".join(batch) + b"\n")
            out.flush()
            continue
        elif mid is not None:
            result = {}
        else:
            continue
        out.write(json.dumps({"id": mid, "result": result}).encode() + b"\n")
        out.flush()


if __name__ == "__main__":
    main()
