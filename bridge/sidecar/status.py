"""The sidecar's status shapes (docs/protocol.md §4.1, §4.2) and the pure rule that derives them.

``derive`` turns the supervisor's facts into the process state the host sees
(``running`` vs ``degraded``) and ``streamHealthy`` (docs/protocol.md §4.3 H), so the
rule is one table-tested function rather than scattered flags.
"""

from __future__ import annotations

import msgspec

from bridge.sidecar.auth import AuthView, Handshake

INACTIVE = "inactive"
STARTING = "starting"
RUNNING = "running"
DEGRADED = "degraded"
CRASH_LOOP = "crash_loop"
STOPPING = "stopping"


class CodexAccountStatus(msgspec.Struct, rename="camel", kw_only=True):
    auth_state: str
    auth_mode: str | None
    auth_mode_allowed: bool
    interactive_login_required: bool
    supported_modes: list[str]
    required_mode: str


class LoginStartResult(CodexAccountStatus, kw_only=True):
    login_id: str | None = None
    auth_url: str | None = None


class CodexAppServerStatus(msgspec.Struct, rename="camel", kw_only=True):
    state: str
    initialized: bool
    initialize_sent: bool
    auth_state: str
    auth_mode: str | None
    auth_mode_allowed: bool
    stream_healthy: bool
    stream_kill_switch: bool
    restart_budget: int
    restart_attempts_in_window: int
    last_error: str | None
    last_info: str | None
    auth_url: str | None
    pid: int | None
    codex_version: str | None
    connection: str
    followed_thread_ids: list[str]
    last_transition_at_iso: str


class SidecarFacts(msgspec.Struct, frozen=True):
    """What the supervisor knows when it computes the state of a live process."""

    process_up: bool
    handshake: Handshake
    auth: AuthView
    required_mode: str
    kill_switch: bool
    alive: bool  # a recent frame, or a liveness probe answered
    last_frame_valid: bool


class Health(msgspec.Struct, frozen=True):
    degraded_reasons: tuple[str, ...]
    stream_healthy: bool

    @property
    def state(self) -> str:
        return DEGRADED if self.degraded_reasons else RUNNING


def derive(facts: SidecarFacts) -> Health:
    """Health of a live process: why it is degraded (if at all) and whether the stream is healthy.

    Degraded covers the reasons other than progress: a handshake or a login
    still under way leaves the process ``running`` with an unhealthy stream.
    """
    if not facts.process_up:
        return Health((), False)
    reasons: list[str] = []
    if facts.kill_switch:
        reasons.append("the stream kill switch is on")
    auth = facts.auth
    if auth.state == "authenticated" and not auth.mode_allowed(facts.required_mode):
        reasons.append(f"the sidecar is authenticated with {auth.mode}, not the required {facts.required_mode}")
    if not facts.last_frame_valid:
        reasons.append("the sidecar sent a frame the bridge could not read")
    if not facts.alive:
        reasons.append("the sidecar did not answer the liveness probe")
    healthy = (
        not reasons
        and facts.handshake is Handshake.INITIALIZED
        and auth.mode_allowed(facts.required_mode)
    )
    return Health(tuple(reasons), healthy)
