"""What the supervisor publishes: its typed state and its lifecycle events.

Other subsystems subscribe with typed callbacks (``add_state_listener``,
``add_lifecycle_listener`` of the supervisor's :class:`.hub.Hub`); nobody has to read the host's
``codex-app-server-status`` wire dicts to learn the sidecar's state. The host's
notifier is one subscriber among others: it turns each :class:`SidecarState`
into a ``codex-app-server-status`` notification (docs/protocol.md §4.1).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import msgspec

from bridge.clock import now_iso
from bridge.redact import redact_text
from bridge.sidecar.auth import AUTHENTICATED, Handshake
from bridge.sidecar.status import INACTIVE, CodexAppServerStatus, SidecarFacts

log = logging.getLogger("bridge.sidecar")


class SidecarState(msgspec.Struct, frozen=True):
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


class Spawned(msgspec.Struct, frozen=True):
    """A new generation: a process spawned, or a connection to the daemon opened."""

    pid: int | None
    generation: int
    connection: str  # spawn | attach


class Exited(msgspec.Struct, frozen=True):
    """A generation ended; ``expected`` tells a stop (or disconnect) from a crash."""

    pid: int | None
    code: int | None
    expected: bool
    connection: str


class Rehandshaken(msgspec.Struct, frozen=True):
    """After an automatic restart, the bridge ran the handshake again by itself."""

    pid: int | None
    generation: int


LifecycleEvent = Spawned | Exited | Rehandshaken
StateListener = Callable[[SidecarState], None]
LifecycleListener = Callable[[LifecycleEvent], None]


class Publisher:
    """The notes a status carries (``lastError``, ``lastInfo``, the last transition) and its subscribers.

    :meth:`publish` hands a :class:`SidecarState` to every state listener when
    the status differs from the last one published (the transition time aside);
    :meth:`lifecycle` hands an event to every lifecycle listener. A failing
    listener is logged and never stops the others.
    """

    def __init__(self) -> None:
        self.last_error: str | None = None
        self.last_info: str | None = None
        self.transition_iso = now_iso()
        self._last_state = INACTIVE
        self._last_published: dict[str, Any] | None = None
        self.state_listeners: list[StateListener] = []
        self.lifecycle_listeners: list[LifecycleListener] = []

    def error(self, message: str) -> None:
        self.last_error = redact_text(message)

    def info(self, message: str) -> None:
        self.last_info = redact_text(message)

    def prime(self, status: CodexAppServerStatus) -> None:
        """The status at birth is no change: only what differs from it is published."""
        self._last_published = _comparable(status)

    def publish(self, facts: SidecarFacts, build: Callable[[SidecarFacts], CodexAppServerStatus]) -> None:
        """Publish the state for ``facts`` (``build`` makes its status) if the status has changed."""
        status = build(facts)
        if status.stream_healthy and self.last_error is not None:
            self.last_error = None  # healthy again: the last error is history
            status = build(facts)
        if status.state != self._last_state:
            self._last_state = status.state
            self.transition_iso = now_iso()
            status.last_transition_at_iso = self.transition_iso
        compare = _comparable(status)
        if compare == self._last_published:
            return
        self._last_published = compare
        state = SidecarState(status, facts)
        for listener in self.state_listeners:
            try:
                listener(state)
            except Exception:
                log.exception("sidecar state listener failed")

    def lifecycle(self, event: LifecycleEvent) -> None:
        for listener in self.lifecycle_listeners:
            try:
                listener(event)
            except Exception:
                log.exception("lifecycle listener failed")


def _comparable(status: CodexAppServerStatus) -> dict[str, Any]:
    body: dict[str, Any] = msgspec.to_builtins(status)
    return {k: v for k, v in body.items() if k != "lastTransitionAtIso"}
