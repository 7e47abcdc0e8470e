"""JSON Schema of every host command's params and result, generated from the msgspec types.

``make schemas`` writes ``schemas/host/<command>.json``; a test regenerates them
in memory and fails when the committed files differ from the code.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import msgspec

from bridge.host.registry import REGISTRY, command_names

_encode = msgspec.json.Encoder(order="sorted").encode


def command_schema(name: str) -> dict[str, Any]:
    cmd = REGISTRY[name]
    params: dict[str, Any] = (
        {"type": "object", "description": "a partial config object (deep-merged)"}
        if cmd.params is dict
        else msgspec.json.schema(cmd.params)
    )
    result: dict[str, Any] = {"type": "null"} if cmd.result is None else msgspec.json.schema(cmd.result)
    return {"command": name, "description": cmd.doc, "params": params, "result": result}


def render_all() -> dict[str, bytes]:
    """file name -> pretty JSON bytes, for every registered command."""
    out: dict[str, bytes] = {}
    for name in command_names():
        out[f"{name}.json"] = msgspec.json.format(_encode(command_schema(name)), indent=2) + b"\n"
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    target = Path(argv[0] if argv else "schemas/host")
    target.mkdir(parents=True, exist_ok=True)
    wanted = render_all()
    for stale in target.glob("*.json"):
        if stale.name not in wanted:
            stale.unlink()
    for name, data in wanted.items():
        (target / name).write_bytes(data)
    print(f"wrote {len(wanted)} command schemas to {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
