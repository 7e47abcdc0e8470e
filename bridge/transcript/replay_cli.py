"""``capture-bridge replay FILE [--realtime] [--host] [--json]`` (docs/protocol.md §6, §8)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="a transcript (serve --transcript, or capture-bridge record)")
    parser.add_argument("--realtime", action="store_true", help="play codex's frames with their recorded timing")
    parser.add_argument(
        "--host", action="store_true", help="also replay the host side and compare the answers with the recorded ones"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args: argparse.Namespace) -> int:
    import anyio

    from bridge.transcript.format import TranscriptError
    from bridge.transcript.replay import replay
    from bridge.transcript.report import render_json, render_text

    path = Path(args.file)
    if not path.is_file():
        print(f"capture-bridge replay: {path} is not a file", file=sys.stderr)
        return 2
    try:
        result = anyio.run(lambda: replay(path, realtime=args.realtime, host_side=args.host))
    except (TranscriptError, ValueError) as exc:
        print(f"capture-bridge replay: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(render_json(result.report) if args.json else render_text(result.report))
    sys.stdout.flush()
    if not result.complete:
        print("capture-bridge replay: the replay did not complete: " + "; ".join(result.problems), file=sys.stderr)
        return 1
    return 1 if result.difference is not None else 0
