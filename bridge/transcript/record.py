"""``capture-bridge record --out FILE -- CMD [ARGS…]``: a recording stdio pass-through.

Put it in front of any newline-delimited JSON-RPC peer (``codex app-server``
above all): bytes flow through unchanged and as they arrive, and every line
in each direction is written to FILE in the transcript format (docs/protocol.md §8,
channel ``sidecar``; ``out`` is what the client sent the peer, ``in`` what
the peer answered), redacted. When the peer exits, its exit line is written
and ``record`` exits with the peer's code (128+N for a signal N).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import threading
from typing import BinaryIO

from bridge.transcript.recorder import DEFAULT_MAX_BYTES, Recorder

CHUNK = 1 << 16


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="the transcript file to write")
    parser.add_argument("--max-bytes", type=int, default=DEFAULT_MAX_BYTES, help="rotate the transcript beyond this")
    parser.add_argument("cmd", nargs=argparse.REMAINDER, help="-- then the peer's command line")


class _Lines:
    """Splits a byte stream into lines for the recorder (the bytes themselves pass through untouched)."""

    def __init__(self, recorder: Recorder, direction: str) -> None:
        self.recorder = recorder
        self.direction = direction
        self.partial = b""

    def feed(self, data: bytes) -> None:
        data = self.partial + data
        *lines, self.partial = data.split(b"\n")
        for line in lines:
            if line.strip():
                self.recorder.record("sidecar", self.direction, line, 1)  # type: ignore[arg-type]

    def finish(self) -> None:
        if self.partial.strip():
            self.recorder.record("sidecar", self.direction, self.partial, 1)  # type: ignore[arg-type]
        self.partial = b""


def _pump(src: int, dst: BinaryIO | int, lines: _Lines, close_dst: bool) -> None:
    try:
        while True:
            try:
                data = os.read(src, CHUNK)
            except InterruptedError:
                continue
            except OSError:
                data = b""
            if not data:
                break
            lines.feed(data)
            try:
                if isinstance(dst, int):
                    view = memoryview(data)
                    while view:
                        view = view[os.write(dst, view) :]
                else:
                    dst.write(data)
                    dst.flush()
            except (BrokenPipeError, OSError):
                break
    finally:
        lines.finish()
        if close_dst and not isinstance(dst, int):
            with contextlib.suppress(OSError):
                dst.close()


def run(args: argparse.Namespace) -> int:
    cmd = list(args.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        print("capture-bridge record: give the peer's command after --", file=sys.stderr)
        return 2
    try:
        recorder = Recorder(args.out, max_bytes=args.max_bytes)
    except OSError as exc:
        print(f"capture-bridge record: cannot write {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    try:
        child = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    except OSError as exc:
        recorder.close()
        print(f"capture-bridge record: cannot start {cmd[0]}: {exc.strerror or exc}", file=sys.stderr)
        return 127
    assert child.stdin is not None and child.stdout is not None
    stdin_closed = threading.Event()

    def forward(signum: int, _frame: object) -> None:
        child.send_signal(signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)

    def client_to_peer() -> None:
        _pump(0, child.stdin, _Lines(recorder, "out"), close_dst=True)  # type: ignore[arg-type]
        stdin_closed.set()

    to_peer = threading.Thread(target=client_to_peer, name="record-to-peer", daemon=True)
    to_peer.start()
    out_fd = sys.stdout.fileno()
    _pump(child.stdout.fileno(), out_fd, _Lines(recorder, "in"), close_dst=False)
    code = child.wait()
    recorder.record_exit(1, code, stdin_closed.is_set())
    recorder.close()
    return 128 - code if code < 0 else code
