"""``capture-bridge`` command line: one module per subcommand, imported lazily.

Each subcommand module exposes ``configure(parser)`` and ``run(args) -> int``;
only the chosen one is imported, so ``serve`` starts without loading the
others.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import sys

# name -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("bridge.host.serve", "run the sidecar the host spawns (JSON-RPC over stdio)"),
    "drill": ("bridge.drill.drill", "perform the release runbook for real on a fresh data dir (make demo)"),
    "claude-env": ("bridge.receiver.claude_env", "print the environment that points Claude Code at the receiver"),
    "gate": ("bridge.reliability.gate_cli", "Go / No-Go over a data dir's recorded history (exit 0 Go, 1 No-Go)"),
    "status": ("bridge.reliability.status_cli", "the capture reliability status of a data dir, for a person"),
    "migrate": ("bridge.collector.cli", "collector migration: status, dry run, run, rollback (on $HOME)"),
    "replay": ("bridge.transcript.replay_cli", "replay a transcript through a fresh bridge and print what it captured"),
    "record": ("bridge.transcript.record", "a recording stdio pass-through for a JSON-RPC peer such as codex"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="capture-bridge", description="Capture sidecar for AI coding agents.")
    parser.add_argument(
        "--version", action="store_true", help="print the version and exit (with --json: version, protocol, platform)"
    )
    parser.add_argument("--json", dest="version_json", action="store_true", help="with --version: one JSON object")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if only is None or only == name:
            importlib.import_module(module_name).configure(p)
    return parser


def print_version(as_json: bool) -> int:
    from bridge.runtime import version_info

    info = version_info()
    if as_json:
        print(json.dumps(info, sort_keys=True))
    else:
        print(f"capture-bridge {info['version']} (protocol {info['protocolVersion']}, {info['targetTriple']})")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    from bridge.runtime import RUN_MODULE

    if argv[:1] == [RUN_MODULE]:  # a process the bridge started itself (replay's player), frozen or not
        from bridge.runtime import run_module

        return run_module(argv[1:])
    chosen = next((a for a in argv if not a.startswith("-")), None)
    if chosen is None and "--version" in argv and set(argv) <= {"--version", "--json"}:
        return print_version("--json" in argv)  # without importing every subcommand for the parser
    if chosen == "serve":
        gc.disable()  # from its first import on; serve turns the collector back on once it is ready (serve.run)
    parser = build_parser(chosen if chosen in SUBCOMMANDS else None)
    args = parser.parse_args(argv)
    if args.version:
        return print_version(args.version_json)
    if not args.command:
        parser.print_help(sys.stderr)
        return 2
    module = importlib.import_module(SUBCOMMANDS[args.command][0])
    result: int = module.run(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
