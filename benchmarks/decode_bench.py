"""Frames per second of the codex stream codec, next to a bare msgspec + SQLite loop.

Reads real codex 0.169.0 frames (the reference recordings in
fixtures/codex-0.169.0/{chat,shell}/, else fixtures/codex-0.169.0/stream.jsonl), repeats them to about
200,000 frames and times, in batches as frames arrive off the pipe:

- ``bare decode``: ``msgspec.json.decode(line)`` to dicts, nothing else;
- ``bare decode + sqlite``: that, plus one INSERT per frame, one commit per batch;
- ``codec``: :class:`tests.support.codec.Codec` (envelope + typed params);
- ``codec + sqlite``: the codec, plus one INSERT per frame with the ids it
  extracted, one commit per batch (the shape of the real stream path).

The project's target: the end-to-end stream path >= 100,000 frames/s, and at
least a third of the bare decode + SQLite loop. Run: ``.venv/bin/python
benchmarks/decode_bench.py [--frames N] [--batch B] [--source FILE…]``.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.codec import Codec, Frame  # noqa: E402

REFERENCE = [ROOT / "fixtures" / "codex-0.169.0" / name / "appserver.jsonl" for name in ("chat", "shell")]
RECORDED = ROOT / "fixtures" / "codex-0.169.0" / "stream.jsonl"
TARGET_FPS = 100_000

SCHEMA = """
CREATE TABLE frames (
  seq INTEGER PRIMARY KEY,
  method TEXT,
  thread_id TEXT,
  turn_id TEXT,
  item_id TEXT,
  raw BLOB NOT NULL
)
"""


def load_frames(sources: list[Path]) -> tuple[list[bytes], str]:
    """Server->client frames as codex wrote them (reference recordings are unwrapped from ``msg``)."""
    lines: list[bytes] = []
    for path in sources:
        for text in path.read_text().splitlines():
            if not text.strip():
                continue
            record = json.loads(text)
            if "dir" in record:  # a reference recording line: {"dir": …, "msg": {…}}
                if record["dir"] == "server->client":
                    lines.append(json.dumps(record["msg"], separators=(",", ":")).encode())
            else:
                lines.append(text.encode())
    return lines, ", ".join(str(p) for p in sources)


def batches(lines: list[bytes], total: int, size: int) -> list[list[bytes]]:
    repeated = (lines * (total // len(lines) + 1))[:total]
    return [repeated[i : i + size] for i in range(0, len(repeated), size)]


def connect(directory: Path, name: str) -> sqlite3.Connection:
    conn = sqlite3.connect(directory / f"{name}.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(SCHEMA)
    return conn


def bare_decode(chunks: list[list[bytes]]) -> None:
    decode = msgspec.json.decode
    for chunk in chunks:
        for line in chunk:
            decode(line)


def codec_decode(chunks: list[list[bytes]]) -> None:
    codec = Codec()
    for chunk in chunks:
        codec.decode_batch(chunk)


def bare_decode_sqlite(chunks: list[list[bytes]], conn: sqlite3.Connection) -> None:
    decode = msgspec.json.decode
    insert = "INSERT INTO frames (method, thread_id, turn_id, item_id, raw) VALUES (?, ?, ?, ?, ?)"
    for chunk in chunks:
        conn.execute("BEGIN")
        for line in chunk:
            obj: dict[str, Any] = decode(line)
            params = obj.get("params") or {}
            conn.execute(
                insert, (obj.get("method"), params.get("threadId"), params.get("turnId"), params.get("itemId"), line)
            )
        conn.execute("COMMIT")


def _ids(frame: Frame) -> tuple[str | None, str | None, str | None, str | None, bytes]:
    p = frame.params
    if p is None:
        return frame.method, None, None, None, frame.raw
    item = getattr(p, "item", None)
    return (
        frame.method,
        getattr(p, "thread_id", None),
        getattr(p, "turn_id", None),
        getattr(p, "item_id", None) or (item.id if item is not None else None),
        frame.raw,
    )


def codec_sqlite(chunks: list[list[bytes]], conn: sqlite3.Connection) -> None:
    codec = Codec()
    insert = "INSERT INTO frames (method, thread_id, turn_id, item_id, raw) VALUES (?, ?, ?, ?, ?)"
    for chunk in chunks:
        frames = codec.decode_batch(chunk)
        conn.execute("BEGIN")
        conn.executemany(insert, [_ids(f) for f in frames])
        conn.execute("COMMIT")


def timed(fn: Callable[[], None], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=256, help="frames decoded and committed together")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case (the best is shown)")
    parser.add_argument("--source", type=Path, nargs="*", help="JSONL files of frames (default: the reference)")
    args = parser.parse_args(argv)

    sources = args.source or ([p for p in REFERENCE if p.exists()] or [RECORDED])
    lines, described = load_frames(sources)
    chunks = batches(lines, args.frames, args.batch)
    total = sum(len(c) for c in chunks)
    print(f"{total} frames ({len(lines)} distinct, {sum(map(len, lines)) // len(lines)} bytes mean) from {described}")
    print(f"batch {args.batch}, best of {args.repeat}\n")

    with tempfile.TemporaryDirectory(prefix="decode-bench-") as tmp:
        directory = Path(tmp)
        counter = iter(range(1_000_000))

        def fresh() -> sqlite3.Connection:
            return connect(directory, f"db{next(counter)}")

        cases: list[tuple[str, Callable[[], None]]] = [
            ("bare decode", lambda: bare_decode(chunks)),
            ("codec", lambda: codec_decode(chunks)),
            ("bare decode + sqlite", lambda: bare_decode_sqlite(chunks, fresh())),
            ("codec + sqlite", lambda: codec_sqlite(chunks, fresh())),
        ]
        results = {name: total / timed(fn, args.repeat) for name, fn in cases}

    baseline = results["bare decode + sqlite"]
    print(f"{'case':<24}{'frames/s':>14}{'vs bare+sqlite':>16}")
    for name, fps in results.items():
        print(f"{name:<24}{fps:>14,.0f}{fps / baseline:>15.2f}x")
    end_to_end = results["codec + sqlite"]
    ok = end_to_end >= TARGET_FPS and end_to_end >= baseline / 3
    print(
        f"\ntarget: codec + sqlite >= {TARGET_FPS:,} frames/s and >= 1/3 of bare + sqlite: {'met' if ok else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
