"""``capture-bridge`` command line: one module per subcommand, imported lazily.

Each subcommand module exposes ``configure(parser)`` and ``run(args) -> int``;
only the chosen one is imported, so ``serve`` starts without loading the
others.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("bridge.host.serve", "run the sidecar the host spawns (JSON-RPC over stdio)"),
    "drill": ("bridge.drill.drill", "perform the release runbook for real on a fresh data dir (make demo)"),
    "claude-env": ("bridge.otel.claude_env", "print the environment that points Claude Code at the receiver"),
    "gate": ("bridge.reliability.gate_cli", "Go / No-Go over a data dir's recorded history (exit 0 Go, 1 No-Go)"),
    "status": ("bridge.reliability.status_cli", "the capture reliability status of a data dir, for a person"),
    "migrate": ("bridge.collector.cli", "collector migration: status, dry run, run, rollback (on $HOME)"),
    "replay": ("bridge.transcript.replay_cli", "replay a transcript through a fresh bridge and print what it captured"),
    "record": ("bridge.transcript.record", "a recording stdio pass-through for a JSON-RPC peer such as codex"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="capture-bridge", description="Capture sidecar for AI coding agents.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if only is None or only == name:
            importlib.import_module(module_name).configure(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    chosen = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(chosen if chosen in SUBCOMMANDS else None)
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help(sys.stderr)
        return 2
    module = importlib.import_module(SUBCOMMANDS[args.command][0])
    result: int = module.run(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
