"""What the supervisor shows: the facts, the host-facing status, the metrics, ``bridge_info.codex``.

Read-only over the supervisor's parts (the current generation, the lifecycle,
the session, the notes of :class:`.events.Publisher`, the mode); the rule that
turns the facts into ``running``/``degraded`` and ``streamHealthy`` is the pure
:func:`.status.derive`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bridge.sidecar.auth import Handshake
from bridge.sidecar.events import SidecarState
from bridge.sidecar.lifecycle import UP
from bridge.sidecar.status import STOPPING, CodexAppServerStatus, SidecarFacts, derive

if TYPE_CHECKING:
    from bridge.sidecar.supervisor import Supervisor


class StatusView:
    """The supervisor's state, as facts, status, metrics and ``bridge_info.codex``."""

    def __init__(self, sup: Supervisor) -> None:
        self._sup = sup

    def facts(self) -> SidecarFacts:
        sup = self._sup
        gen = sup.gen
        return SidecarFacts(
            process_up=sup.lc.phase == UP and gen is not None,
            handshake=gen.handshake if gen is not None else Handshake.NOT_STARTED,
            auth=sup.session.auth,
            required_mode=sup.required_mode,
            kill_switch=sup.kill_switch,
            alive=gen.alive if gen is not None else False,
            last_frame_valid=gen.client.last_frame_valid if gen is not None else True,
        )

    def state(self) -> SidecarState:
        facts = self.facts()
        return SidecarState(self.status(facts), facts)

    def status(self, facts: SidecarFacts | None = None) -> CodexAppServerStatus:
        """The status the host sees (docs/protocol.md §4.1), from ``facts`` (default: now's)."""
        sup = self._sup
        facts = facts if facts is not None else self.facts()
        health = derive(facts)
        lc = sup.lc
        gen = sup.gen
        auth = sup.session.auth
        return CodexAppServerStatus(
            state=health.state if lc.phase == UP else lc.phase,
            initialized=gen is not None and gen.handshake is Handshake.INITIALIZED,
            initialize_sent=gen is not None and gen.handshake in (Handshake.ANSWERED, Handshake.INITIALIZED),
            auth_state=auth.state,
            auth_mode=auth.mode,
            auth_mode_allowed=auth.mode_allowed(facts.required_mode),
            stream_healthy=health.stream_healthy,
            stream_kill_switch=facts.kill_switch,
            restart_budget=lc.window.budget,
            restart_attempts_in_window=lc.restart_attempts(sup.options.clock()),
            last_error=sup.pub.last_error,
            last_info=sup.pub.last_info,
            auth_url=auth.auth_url if auth.login_pending else None,
            pid=gen.conn.pid if gen is not None and lc.phase in (UP, STOPPING) else None,
            codex_version=sup.session.codex_version,
            connection=sup.connection,
            followed_thread_ids=sup.followed,
            last_transition_at_iso=sup.pub.transition_iso,
        )

    def metrics(self) -> dict[str, Any]:
        """Counters for the reliability metrics (totals over every generation)."""
        sup = self._sup
        gen = sup.gen
        live = gen.client if gen is not None else None
        stderr = gen.conn.stderr if gen is not None else None
        return sup.totals.metrics(live, stderr, sup.spawn_mode.restarts)

    def codex_info(self) -> dict[str, Any] | None:
        """``bridge_info.codex``: where codex is (the binary, or the daemon's socket), its version, the mode."""
        mode = self._sup.mode
        where = mode.where()
        if where is None:
            return None  # nothing spawned yet
        return {"path": where, "version": self._sup.session.codex_version, "connection": mode.kind,
                "followedThreadIds": mode.followed}  # fmt: skip
