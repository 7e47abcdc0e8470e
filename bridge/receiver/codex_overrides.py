"""``-c`` overrides that point a codex the bridge spawns at the bridge's receiver.

Overrides apply to that one process only, so the user's ``config.toml`` is
never touched (docs/peers.md §2). All three exporters are set, because codex's
``metrics_exporter`` otherwise defaults to a remote endpoint, and prompts and
agent responses are logged so the baseline can rebuild items on its own.

The key travels in the process's arguments (codex has no other way to take an
OTLP header for one run): on a multi-user machine another user can read it
from the process list, which is why the receiver binds loopback only by
default and the key protects nothing beyond this receiver.
"""

from __future__ import annotations

import json
from typing import Literal

from bridge.receiver.auth import HEADER_NAME

Protocol = Literal["json", "binary"]


def _toml_string(value: str) -> str:
    # A JSON string literal is a valid TOML basic string for the characters we emit.
    return json.dumps(value, ensure_ascii=True)


def _exporter(endpoint: str, signal: str, key: str, protocol: Protocol) -> str:
    url = f"{endpoint.rstrip('/')}/v1/{signal}"
    return (
        "{otlp-http={"
        f"endpoint={_toml_string(url)},"
        f"protocol={_toml_string(protocol)},"
        f"headers={{{_toml_string(HEADER_NAME)}={_toml_string(key)}}}"
        "}}"
    )


def codex_otel_overrides(endpoint: str, key: str, *, protocol: Protocol = "binary") -> list[str]:
    """The ``-c`` arguments (flat list) for ``codex`` given the receiver's base URL and key."""
    if protocol not in ("json", "binary"):
        raise ValueError(f"protocol must be 'json' or 'binary', not {protocol!r}")
    pairs = [
        ("otel.exporter", _exporter(endpoint, "logs", key, protocol)),
        ("otel.trace_exporter", _exporter(endpoint, "traces", key, protocol)),
        ("otel.metrics_exporter", _exporter(endpoint, "metrics", key, protocol)),
        ("otel.log_user_prompt", "true"),
        ("otel.log_agent_responses", "true"),
    ]
    args: list[str] = []
    for name, value in pairs:
        args += ["-c", f"{name}={value}"]
    return args
