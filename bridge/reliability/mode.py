"""The capture mode as a pure function of facts (docs/protocol.md §4.3).

Rule (B = OTEL baseline healthy, E = stream expected, H = stream healthy):

| B | E | H | mode |
|---|---|---|---|
| yes | yes | yes | ``HYBRID_ACTIVE`` |
| yes | yes | no | ``DEGRADED_STREAMING`` |
| yes | no | any | ``OTEL_ONLY`` |
| no | any | any | ``FAILURE`` |

- B: ``autoIngestEnabled``, the OTLP receiver is listening, and the store can
  be written (a failed write — disk full, I/O error, read-only, damage — means
  the baseline cannot be kept).
- E: ``streamEnrichmentEnabled`` and the kill switch is off.
- H: the sidecar runs (``running`` or ``degraded``), its handshake is complete,
  it confirmed a login in the required mode, it is alive (a recent frame or an
  answered liveness probe) and its last frame was readable.

Nothing here remembers anything: H is true again as soon as its facts hold
again, so one odd frame or one missed probe never sticks.

``reasons`` explain the mode, most important first: what breaks the baseline,
then why the stream is not expected, then (only when it is expected) what keeps
it unhealthy. ``reasons[0]`` is always the reason for the mode itself; a
healthy hybrid mode gets one positive reason.
"""

from __future__ import annotations

from typing import Final, Literal

import msgspec

Mode = Literal["OTEL_ONLY", "HYBRID_ACTIVE", "DEGRADED_STREAMING", "FAILURE"]
OTEL_ONLY: Final = "OTEL_ONLY"
HYBRID_ACTIVE: Final = "HYBRID_ACTIVE"
DEGRADED_STREAMING: Final = "DEGRADED_STREAMING"
FAILURE: Final = "FAILURE"
MODES: tuple[Mode, ...] = (OTEL_ONLY, HYBRID_ACTIVE, DEGRADED_STREAMING, FAILURE)

RECEIVER_STATES = ("listening", "stopped", "error")
SIDECAR_STATES = ("inactive", "starting", "running", "degraded", "crash_loop", "stopping")
SIDECAR_UP = ("running", "degraded")

HEALTHY_REASON = "The OTEL baseline is receiving and the codex stream is healthy."


class ModeFacts(msgspec.Struct, frozen=True):
    """Everything the mode depends on, as observed at one moment."""

    auto_ingest_enabled: bool
    receiver_state: str  # listening | stopped | error
    stream_enrichment_enabled: bool
    kill_switch: bool
    sidecar_state: str  # CodexAppServerStatus.state
    handshake_complete: bool
    auth_confirmed: bool  # the sidecar itself reports an account
    auth_mode_allowed: bool  # ... in the required mode
    sidecar_alive: bool  # a recent frame, or the liveness probe answered
    frames_valid: bool  # the last frame from the sidecar was readable
    required_auth_mode: str = "chatgpt"
    auth_mode: str | None = None
    receiver_message: str | None = None
    store_writable: bool = True  # the last write did not fail on the storage (or a probe proved it works again)
    store_problem: str | None = None  # what failed, when not writable
    data_dir: str = "the data dir"
    store_note: str | None = None  # a damaged store was moved aside: said after the reasons for the mode

    @property
    def sidecar_running(self) -> bool:
        return self.sidecar_state in SIDECAR_UP


class Evaluation(msgspec.Struct, frozen=True):
    mode: Mode
    otel_baseline_healthy: bool
    stream_expected: bool
    stream_healthy: bool
    reasons: tuple[str, ...]

    @property
    def reason(self) -> str:
        """The single most important reason (what a transition records)."""
        return self.reasons[0]


def baseline_healthy(f: ModeFacts) -> bool:
    return f.auto_ingest_enabled and f.receiver_state == "listening" and f.store_writable


def stream_expected(f: ModeFacts) -> bool:
    return f.stream_enrichment_enabled and not f.kill_switch


def stream_healthy(f: ModeFacts) -> bool:
    return (
        f.sidecar_running
        and f.handshake_complete
        and f.auth_confirmed
        and f.auth_mode_allowed
        and f.sidecar_alive
        and f.frames_valid
    )


def decide_mode(b: bool, e: bool, h: bool) -> Mode:
    if not b:
        return FAILURE
    if not e:
        return OTEL_ONLY
    return HYBRID_ACTIVE if h else DEGRADED_STREAMING


def baseline_reasons(f: ModeFacts) -> list[str]:
    reasons: list[str] = []
    if not f.store_writable:
        reasons.append(
            f"Writes to the store in {f.data_dir} fail ({f.store_problem or 'storage fault'}), so the OTEL baseline "
            "cannot be kept; captured batches are held in memory and committed when writes succeed again."
        )
    if not f.auto_ingest_enabled:
        reasons.append(
            "autoIngestEnabled is false (the default of a new data dir): the OTEL baseline is off, so the mode is "
            'FAILURE until the host turns it on with set_ingest_config {"autoIngestEnabled": true}.'
        )
    if f.receiver_state == "stopped":
        reasons.append("The OTLP receiver is stopped, so the OTEL baseline cannot receive.")
    elif f.receiver_state != "listening":
        detail = f" ({f.receiver_message})" if f.receiver_message else ""
        reasons.append(
            f"The OTLP receiver is in state {f.receiver_state}{detail}, so the OTEL baseline cannot receive."
        )
    return reasons


def expectation_reasons(f: ModeFacts) -> list[str]:
    reasons: list[str] = []
    if not f.stream_enrichment_enabled:
        reasons.append("streamEnrichmentEnabled is false: the codex stream is not expected.")
    if f.kill_switch:
        reasons.append("The stream kill switch is on: the codex stream is not expected.")
    return reasons


def health_reasons(f: ModeFacts) -> list[str]:
    if not f.sidecar_running:
        if f.sidecar_state == "crash_loop":
            return [
                "codex app-server is in crash_loop: it exited too often and is not restarted; "
                "start_codex_app_server is refused (-32015, data.retryAfterMs) until the spawn budget "
                "of 3 per 60 s has room again, or at once after a change to codex.* in set_ingest_config."
            ]
        hint = " (start_codex_app_server, then the handshake)" if f.sidecar_state == "inactive" else ""
        return [f"codex app-server is {f.sidecar_state}, not running{hint}."]
    reasons: list[str] = []
    if not f.handshake_complete:
        reasons.append("The codex app-server handshake (initialize, initialized) is not complete.")
    if not f.auth_confirmed:
        reasons.append(f"The sidecar has not confirmed a {f.required_auth_mode} login.")
    elif not f.auth_mode_allowed:
        reasons.append(
            f"The sidecar is logged in with {f.auth_mode or 'another mode'}, not the required {f.required_auth_mode}."
        )
    if not f.sidecar_alive:
        reasons.append("The sidecar did not answer the liveness probe.")
    if not f.frames_valid:
        reasons.append("The sidecar's last frame could not be read.")
    return reasons


def evaluate(f: ModeFacts) -> Evaluation:
    """The mode for ``f`` and why, most important reason first."""
    b, e, h = baseline_healthy(f), stream_expected(f), stream_healthy(f)
    reasons = baseline_reasons(f) + expectation_reasons(f)
    if e:
        reasons += health_reasons(f)
    if not reasons:
        reasons = [HEALTHY_REASON]
    if f.store_note:
        reasons.append(f.store_note)
    return Evaluation(decide_mode(b, e, h), b, e, h, tuple(reasons))
