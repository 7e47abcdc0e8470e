"""Generating codex's JSON Schema from the pinned binary, and the committed snapshot.

``python -m tests.support.schema_dump --check`` regenerates the schema and
prints every struct field that drifted; ``--refresh`` rewrites
``schemas/codex/codex-<version>.json``. Both run codex, so both refuse to run
outside the loopback-only fence (``python -m bridge.peers.fence -- …``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bridge.peers import fence
from bridge.peers.install import CODEX_VERSION, codex_native_binary
from tests.support import schema_check

SNAPSHOT_DIR = Path(__file__).resolve().parents[2] / "schemas" / "codex"


def snapshot_path(version: str = CODEX_VERSION) -> Path:
    return SNAPSHOT_DIR / f"codex-{version}.json"


def generate(out_dir: Path, binary: Path | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run ``codex app-server generate-json-schema`` and load (ServerNotification, ServerRequest)."""
    if not fence.isolated():
        raise RuntimeError("codex runs only inside the loopback-only fence: use `python -m bridge.peers.fence -- …`")
    home = out_dir / "home"
    env = fence.peer_env(dict(os.environ), home)
    argv = [
        str(binary or codex_native_binary()), *fence.CODEX_SAFE_ARGS,
        "app-server", "generate-json-schema", "--out", str(out_dir / "schema"),
    ]  # fmt: skip
    subprocess.run(argv, env=env, check=True, capture_output=True, timeout=120)
    notifications = json.loads((out_dir / "schema" / "ServerNotification.json").read_text())
    requests = json.loads((out_dir / "schema" / "ServerRequest.json").read_text())
    return notifications, requests


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.schema_dump", description=__doc__.split("\n")[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--check", action="store_true", help="print struct fields that drifted from codex's schema")
    action.add_argument("--refresh", action="store_true", help="rewrite the committed schema snapshot")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="codex-schema-") as tmp:
        notifications, requests = generate(Path(tmp))
    problems = schema_check.check_all(notifications, requests)
    for problem in problems:
        print(problem)
    if args.refresh:
        snap = schema_check.snapshot(notifications, requests, CODEX_VERSION)
        path = snapshot_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(snap, indent=1, sort_keys=True) + "\n")
        print(f"wrote {path} ({path.stat().st_size} bytes)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
