"""What the supervisor publishes: its typed state and its lifecycle events.

Other subsystems subscribe with typed callbacks (``Supervisor.add_state_listener``,
``Supervisor.add_lifecycle_listener``); nobody has to read the host's
``codex-app-server-status`` wire dicts to learn the sidecar's state. The host's
notifier is one subscriber among others: it turns each :class:`SidecarState`
into a ``codex-app-server-status`` notification (docs/protocol.md §4.1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bridge.sidecar.auth import AUTHENTICATED, Handshake
from bridge.sidecar.status import CodexAppServerStatus, SidecarFacts


@dataclass(frozen=True)
class SidecarState:
    """The status the host sees, and the facts it was derived from (published on every change)."""

    status: CodexAppServerStatus
    facts: SidecarFacts

    @property
    def handshake_complete(self) -> bool:
        return self.facts.handshake is Handshake.INITIALIZED

    @property
    def auth_confirmed(self) -> bool:
        """The sidecar itself reports an account."""
        return self.facts.auth.state == AUTHENTICATED

    @property
    def auth_mode_allowed(self) -> bool:
        """... in the required mode."""
        return self.auth_confirmed and self.facts.auth.mode_allowed(self.facts.required_mode)

    @property
    def alive(self) -> bool:
        """A process runs and it is alive (a recent frame, or the liveness probe answered)."""
        return self.facts.process_up and self.facts.alive

    @property
    def frames_valid(self) -> bool:
        """The last frame of a running process was readable (true when none runs)."""
        return self.facts.last_frame_valid if self.facts.process_up else True


@dataclass(frozen=True)
class Spawned:
    """A new generation: a process spawned, or a connection to the daemon opened."""

    pid: int | None
    generation: int
    connection: str  # spawn | attach


@dataclass(frozen=True)
class Exited:
    """A generation ended; ``expected`` tells a stop (or disconnect) from a crash."""

    pid: int | None
    code: int | None
    expected: bool
    connection: str


@dataclass(frozen=True)
class Rehandshaken:
    """After an automatic restart, the bridge ran the handshake again by itself."""

    pid: int | None
    generation: int


LifecycleEvent = Spawned | Exited | Rehandshaken
StateListener = Callable[[SidecarState], None]
LifecycleListener = Callable[[LifecycleEvent], None]
