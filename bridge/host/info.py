"""``bridge_info`` and ``shutdown`` (docs/protocol.md §3.1)."""

from __future__ import annotations

from typing import Any

import msgspec

from bridge import PROTOCOL_VERSION, __version__
from bridge.host.app import App
from bridge.host.registry import REGISTRY, NoParams, Result, command


class CodexInfo(Result):
    path: str | None
    version: str | None
    connection: str
    followed_thread_ids: list[str] = msgspec.field(default_factory=list)


class BridgeInfo(Result):
    name: str
    version: str
    protocol_version: int
    framing: str | None
    commands: list[str]
    codex: CodexInfo | None
    data_dir: str
    pid: int
    run_id: str


def command_list() -> list[str]:
    """Every command that works: the registry, or its generated manifest while it still loads."""
    from bridge.host import manifest

    if len(REGISTRY) >= len(manifest.COMMANDS):
        return sorted(REGISTRY)
    return list(manifest.COMMANDS)


def codex_info(app: App) -> CodexInfo | None:
    sidecar: Any = getattr(app, "sidecar", None)
    info = sidecar.codex_info() if sidecar is not None and hasattr(sidecar, "codex_info") else None
    return msgspec.convert(info, CodexInfo) if isinstance(info, dict) else info


@command("bridge_info", result=BridgeInfo)
async def bridge_info(app: App, params: NoParams) -> BridgeInfo:
    """Who is talking: name, versions, framing, the commands that work, codex, data dir."""
    import os

    return BridgeInfo(
        name="capture-bridge",
        version=__version__,
        protocol_version=PROTOCOL_VERSION,
        framing=app.framing,
        commands=command_list(),
        codex=codex_info(app),
        data_dir=str(app.data_dir.root),
        pid=os.getpid(),
        run_id=app.notifier.run_id,
    )


@command("shutdown", result=None)
async def shutdown(app: App, params: NoParams) -> None:
    """Answer ``null``; the server then stops the sidecar, flushes and exits 0."""
    return None
