"""Locating (and, when missing, installing) the pinned Claude Code.

Cached next to codex under :func:`bridge.peers.install.peers_dir`. The npm
package ships a native executable per platform (``bin/claude.exe`` is the
platform binary itself, not a Node launcher), so it can be run and signalled
directly like the native codex. The environment that keeps it offline and
points its telemetry at a receiver is :func:`claude_env` (docs/peers.md §3).
"""

from __future__ import annotations

from pathlib import Path

from bridge.peers.install import installed_binary, no_install, npm_install, peers_dir

CLAUDE_VERSION = "2.1.197"
CLAUDE_PACKAGE = f"@anthropic-ai/claude-code@{CLAUDE_VERSION}"

# Everything that would make Claude Code talk to anything but the fake and the receiver.
QUIET_ENV: dict[str, str] = {
    "DISABLE_TELEMETRY": "1",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "DISABLE_BUG_COMMAND": "1",
}


def claude_dir() -> Path:
    return peers_dir() / f"claude-code-{CLAUDE_VERSION}"


def claude_binary(install: bool = True) -> Path:
    """The Claude Code executable of the pinned version (installed with npm when missing)."""
    path = claude_dir() / "node_modules" / "@anthropic-ai" / "claude-code" / "bin" / "claude.exe"
    return installed_binary(path, install_claude if install else no_install, f"Claude Code {CLAUDE_VERSION}")


def install_claude() -> None:
    npm_install(claude_dir(), CLAUDE_PACKAGE)


def claude_env(
    base: dict[str, str],
    *,
    anthropic_base_url: str,
    otlp_endpoint: str,
    otlp_headers: str,
    protocol: str = "http/protobuf",
) -> dict[str, str]:
    """Environment for ``claude -p``: the fake Messages API, OTLP to ``otlp_endpoint``, nothing else.

    ``base`` should already be fenced (:func:`bridge.peers.fence.peer_env`).
    """
    env = dict(base)
    env.update(QUIET_ENV)
    env.update(
        ANTHROPIC_BASE_URL=anthropic_base_url,
        ANTHROPIC_API_KEY="dummy",
        CLAUDE_CODE_ENABLE_TELEMETRY="1",
        CLAUDE_CODE_ENHANCED_TELEMETRY_BETA="1",
        OTEL_LOGS_EXPORTER="otlp",
        OTEL_METRICS_EXPORTER="otlp",
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
        OTEL_EXPORTER_OTLP_ENDPOINT=otlp_endpoint,
        OTEL_EXPORTER_OTLP_HEADERS=otlp_headers,
        OTEL_LOGS_EXPORT_INTERVAL="500",
        OTEL_METRIC_EXPORT_INTERVAL="1000",
        OTEL_TRACES_EXPORT_INTERVAL="500",
        OTEL_LOG_USER_PROMPTS="1",
        OTEL_LOG_TOOL_DETAILS="1",
    )
    return env
