"""How codex is reached: the one protocol behind which spawn mode and attach mode differ.

The supervisor (:mod:`.supervisor`) is the same for both; ``start`` chooses a
:class:`Mode` once, and every behaviour that differs between spawning codex
(:class:`.spawn_mode.SpawnMode`) and attaching to the user's daemon
(:class:`.attach_mode.AttachMode`) is one of its methods. What differs in the
connection itself (pid, stderr, how it stops and introduces itself) is the
:class:`.connection.CodexConnection`'s.
"""

from __future__ import annotations

from typing import Protocol

from bridge.sidecar.connection import Kind
from bridge.sidecar.generation import Generation


class Mode(Protocol):
    """How codex is reached: what differs between spawning it and attaching to the user's daemon."""

    kind: Kind
    observer: bool  # attached to the user's daemon: its account, threads and approvals are the user's

    @property
    def followed(self) -> list[str]:
        """Threads whose live events this connection receives."""

    def thread_followed(self, thread_id: str) -> None:
        """The host subscribed to a thread with ``thread/resume``."""

    def where(self) -> str | None:
        """The binary in use, or the daemon's socket (``bridge_info.codex.path``); None before any spawn."""

    async def start(self) -> None:
        """The host's start (the mode checks it under the lifecycle lock); returns once the first try settled."""

    async def host_initialize(self, gen: Generation) -> None:
        """The host's ``codex_app_server_initialize`` (spawn: sent, in order; attach: the bridge's own, awaited)."""

    async def host_initialized(self, gen: Generation) -> None:
        """The host's ``codex_app_server_initialized``, likewise."""

    async def beside(self, gen: Generation) -> None:
        """What runs beside the client while ``gen`` lives."""

    async def ended(self, gen: Generation) -> None:
        """``gen`` (the current one) ended without being stopped."""

    def stop_pending(self) -> None:
        """Nothing that waits (a reconnect) may open a connection after this."""
