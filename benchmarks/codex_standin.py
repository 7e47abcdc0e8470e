"""A load generator in the place of ``codex app-server``, for the benchmarks only.

Not a fake used by tests: the bridge spawns it as its codex (``codex.binaryPath``)
so a scenario can choose the load. It answers the handshake (``initialize``,
``account/read`` as an API-key login) and, on ``thread/start``, writes its
stream on a thread of its own while it keeps answering:

- ``--frames N`` realistic frames (benchmarks/workload.py), ``--deltas`` agent
  deltas per turn;
- ``--rate R`` frames per second, paced against the clock (every frame that
  is due is written at once, so a late wake-up writes a small burst); 0
  writes batches of 512 as fast as the pipe takes them;
- ``--stamps FILE``: the CLOCK_MONOTONIC time right before each frame's write
  is kept and, once the stream is written, saved to FILE (int64 ns, one per
  frame, in order). The bridge sends one ``session:live:event`` per frame, in
  order, so the host pairs the n-th stamp with the n-th event it read: the lag
  is measured without relying on anything inside the event.

``thread/resume``, ``thread/read`` and ``thread/turns/list`` answer one
thread of ``--thread-items`` items (20 a turn, pages of 50 turns), for the
hydration scenario. Anything else asked is answered ``{}``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import threading
import time
from array import array
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from workload import frames

BATCH = 512
ITEMS_PER_TURN = 20
TURNS_PER_PAGE = 50
HYDRATED = "bench-hydrated-thread"

_lock = threading.Lock()


def write(data: bytes) -> None:
    with _lock:
        view = memoryview(data)
        while view:
            view = view[os.write(1, view) :]


def prebuild(total: int, deltas: int) -> list[bytes]:
    """The whole stream as the writes it will take (``--prebuilt``), built before anything is timed."""
    lines = list(frames(total, deltas))
    return [b"\n".join(lines[i : i + BATCH]) + b"\n" for i in range(0, len(lines), BATCH)]


def stream(total: int, deltas: int, rate: float, stamps_path: str | None, built: list[bytes] | None = None) -> None:
    lines = frames(total, deltas)
    stamps = array("q")
    if built is not None:
        for data in built:
            stamps.extend([time.monotonic_ns()] * (data.count(b"\n")))
            write(data)
    elif rate <= 0:
        batch: list[bytes] = []
        for line in lines:
            batch.append(line)
            if len(batch) == BATCH:
                stamps.extend([time.monotonic_ns()] * len(batch))
                write(b"\n".join(batch) + b"\n")
                batch.clear()
        if batch:
            stamps.extend([time.monotonic_ns()] * len(batch))
            write(b"\n".join(batch) + b"\n")
    else:
        period = 1e9 / rate
        start = time.monotonic_ns()
        sent = 0
        while sent < total:
            now = time.monotonic_ns()
            due = min(total, int((now - start) / period) + 1)
            if due <= sent:
                time.sleep(max(0.0, (start + sent * period - now) / 1e9))
                continue
            out = [line for line in itertools.islice(lines, due - sent)]
            sent = due
            stamps.extend([time.monotonic_ns()] * len(out))
            write(b"\n".join(out) + b"\n")
    if stamps_path:
        with open(stamps_path + ".part", "wb") as f:
            stamps.tofile(f)
        os.replace(stamps_path + ".part", stamps_path)


def _item(tid: str, turn: int, k: int, at_ms: int) -> dict[str, Any]:
    iid = f"{tid}-t{turn}-i{k}"
    common = {"id": iid, "startedAtMs": at_ms + k, "completedAtMs": at_ms + k + 1}
    if k == 0:
        text = f"turn {turn}: please look at the failing test and fix it"
        return {"type": "userMessage", **common, "content": [{"type": "text", "text": text, "text_elements": []}]}
    kind = k % 3
    if kind == 0:
        return {"type": "reasoning", **common, "summary": [f"considering step {k} of turn {turn}"], "content": []}
    if kind == 1:
        output = "".join(f"test_{turn}_{k}_{n} ... ok\n" for n in range(8))
        return {"type": "commandExecution", **common, "command": "make test", "cwd": "/work", "status": "completed",
                "aggregatedOutput": output, "exitCode": 0, "commandActions": [], "durationMs": 1200}  # fmt: skip
    words = " ".join(f"word{n}" for n in range(40))
    return {"type": "agentMessage", **common, "text": f"turn {turn} item {k}: {words}", "phase": None}


class Hydration:
    """One thread of ``items`` items, built once, as codex's resume/read/turns-list answers."""

    def __init__(self, items: int) -> None:
        at = int(time.time()) - 86_400
        self.thread: dict[str, Any] = {
            "id": HYDRATED, "preview": "a long thread", "name": "bench hydration", "cwd": "/work", "path": None,
            "modelProvider": "openai", "model": "gpt-5.1-codex", "cliVersion": "0.169.0", "createdAt": at,
            "updatedAt": at + 3600, "ephemeral": False, "status": {"type": "idle"}, "turns": [],
        }  # fmt: skip
        self.turns: list[dict[str, Any]] = []
        for n in range((items + ITEMS_PER_TURN - 1) // ITEMS_PER_TURN):
            count = min(ITEMS_PER_TURN, items - n * ITEMS_PER_TURN)
            started = at + n * 10
            self.turns.append({"id": f"{HYDRATED}-turn-{n}", "status": "completed", "error": None,
                               "items": [_item(HYDRATED, n, k, started * 1000) for k in range(count)],
                               "startedAt": started, "completedAt": started + 9, "durationMs": 9000})  # fmt: skip

    def resume(self) -> dict[str, Any]:
        return {"thread": {**self.thread, "turns": self.turns}, "model": "gpt-5.1-codex", "modelProvider": "openai",
                "cwd": "/work", "approvalPolicy": "never", "sandbox": {"type": "readOnly"},
                "reasoningEffort": None}  # fmt: skip

    def page(self, cursor: str | None) -> dict[str, Any]:
        start = int(cursor or 0)
        end = start + TURNS_PER_PAGE
        return {"data": self.turns[start:end], "nextCursor": str(end) if end < len(self.turns) else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=0)
    parser.add_argument("--deltas", type=int, default=120)
    parser.add_argument("--rate", type=float, default=0.0)
    parser.add_argument("--stamps", help="save each frame's write time (ns) here once the stream is written")
    parser.add_argument("--thread-items", type=int, default=0)
    parser.add_argument("--prebuilt", action="store_true", help="build every frame before answering initialize")
    args, _ = parser.parse_known_args()  # codex's own arguments (app-server …) are ignored
    built = prebuild(args.frames, args.deltas) if args.prebuilt and args.frames else None
    hydration = Hydration(args.thread_items) if args.thread_items else None
    streamer: threading.Thread | None = None
    for raw in sys.stdin.buffer:
        if not raw.strip():
            continue
        msg = json.loads(raw)
        method, mid = msg.get("method"), msg.get("id")
        if mid is None or method is None:
            continue  # notifications (initialized) and answers to codex's own requests
        result: Any = {}
        if method == "initialize":
            result = {"userAgent": "bench/0.169.0 (bench)", "codexHome": "/tmp", "platformFamily": "unix",
                      "platformOs": "linux"}  # fmt: skip
        elif method == "account/read":
            result = {"account": {"type": "apiKey"}, "requiresOpenaiAuth": True}
        elif method == "thread/start":
            result = {"thread": {"id": "bench-thread-0", "turns": []}, "model": "gpt-5.1-codex"}
            if streamer is None and args.frames:
                streamer = threading.Thread(
                    target=stream, args=(args.frames, args.deltas, args.rate, args.stamps, built), daemon=True
                )
        elif hydration is not None and method == "thread/resume":
            result = hydration.resume()
        elif hydration is not None and method == "thread/read":
            result = {"thread": hydration.thread}
        elif hydration is not None and method == "thread/turns/list":
            result = hydration.page((msg.get("params") or {}).get("cursor"))
        write(json.dumps({"id": mid, "result": result}, separators=(",", ":")).encode() + b"\n")
        if streamer is not None and not streamer.is_alive() and streamer.ident is None:
            streamer.start()  # after the answer, so thread/start is answered before the stream


if __name__ == "__main__":
    main()
