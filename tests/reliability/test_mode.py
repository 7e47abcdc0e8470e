"""The capture mode over every combination of facts (docs/protocol.md §4.3)."""

from __future__ import annotations

import itertools

import pytest

from bridge.reliability.mode import (
    DEGRADED_STREAMING,
    FAILURE,
    HEALTHY_REASON,
    HYBRID_ACTIVE,
    OTEL_ONLY,
    RECEIVER_STATES,
    SIDECAR_STATES,
    ModeFacts,
    evaluate,
)

BOOLS = (False, True)


def all_facts() -> list[ModeFacts]:
    out = []
    for (
        auto_ingest,
        receiver,
        enrichment,
        kill,
        sidecar,
        handshake,
        confirmed,
        allowed,
        alive,
        frames,
        writable,
    ) in itertools.product(
        BOOLS, RECEIVER_STATES, BOOLS, BOOLS, SIDECAR_STATES, BOOLS, BOOLS, BOOLS, BOOLS, BOOLS, BOOLS
    ):
        out.append(
            ModeFacts(
                auto_ingest_enabled=auto_ingest,
                receiver_state=receiver,
                stream_enrichment_enabled=enrichment,
                kill_switch=kill,
                sidecar_state=sidecar,
                handshake_complete=handshake,
                auth_confirmed=confirmed,
                auth_mode_allowed=allowed,
                sidecar_alive=alive,
                frames_valid=frames,
                auth_mode="apikey",
                receiver_message="port in use" if receiver == "error" else None,
                store_writable=writable,
                store_problem=None if writable else "the disk is full",
                data_dir="/data",
            )
        )
    return out


ALL = all_facts()


def expected_mode(f: ModeFacts) -> str:
    """The contract's rule, written out independently of the implementation."""
    b = f.auto_ingest_enabled and f.receiver_state == "listening" and f.store_writable
    e = f.stream_enrichment_enabled and not f.kill_switch
    h = (
        f.sidecar_state in ("running", "degraded")
        and f.handshake_complete
        and f.auth_confirmed
        and f.auth_mode_allowed
        and f.sidecar_alive
        and f.frames_valid
    )
    if b and e and h:
        return HYBRID_ACTIVE
    if b and e:
        return DEGRADED_STREAMING
    if b:
        return OTEL_ONLY
    return FAILURE


def expected_reasons(f: ModeFacts) -> list[str]:
    """Which reasons must appear, as keywords, in order of importance."""
    out: list[str] = []
    if not f.store_writable:
        out.append("Writes to the store in /data fail (the disk is full)")
    if not f.auto_ingest_enabled:
        out.append("autoIngestEnabled is false")
    if f.receiver_state != "listening":
        out.append(f"receiver is {'stopped' if f.receiver_state == 'stopped' else 'in state error (port in use)'}")
    if not f.stream_enrichment_enabled:
        out.append("streamEnrichmentEnabled is false")
    if f.kill_switch:
        out.append("kill switch is on")
    if f.stream_enrichment_enabled and not f.kill_switch:
        if f.sidecar_state not in ("running", "degraded"):
            out.append("crash_loop" if f.sidecar_state == "crash_loop" else f"is {f.sidecar_state}, not running")
        else:
            if not f.handshake_complete:
                out.append("handshake")
            if not f.auth_confirmed:
                out.append("has not confirmed a chatgpt login")
            elif not f.auth_mode_allowed:
                out.append("logged in with apikey, not the required chatgpt")
            if not f.sidecar_alive:
                out.append("liveness probe")
            if not f.frames_valid:
                out.append("last frame could not be read")
    return out


def test_the_table_is_complete() -> None:
    assert len(ALL) == 2 * 3 * 2 * 2 * 6 * 2**6
    assert {evaluate(f).mode for f in ALL} == {HYBRID_ACTIVE, DEGRADED_STREAMING, OTEL_ONLY, FAILURE}


@pytest.mark.parametrize("chunk", range(8))
def test_mode_and_reasons_for_every_combination(chunk: int) -> None:
    for f in ALL[chunk::8]:
        ev = evaluate(f)
        assert ev.mode == expected_mode(f), f
        assert ev.otel_baseline_healthy == (
            f.auto_ingest_enabled and f.receiver_state == "listening" and f.store_writable
        )
        assert ev.stream_expected == (f.stream_enrichment_enabled and not f.kill_switch)
        wanted = expected_reasons(f)
        if ev.mode == HYBRID_ACTIVE:
            assert wanted == [] and ev.reasons == (HEALTHY_REASON,), f
            continue
        assert len(ev.reasons) == len(wanted), (f, ev.reasons)
        for keyword, reason in zip(wanted, ev.reasons, strict=True):
            assert keyword in reason, (f, keyword, reason)


def test_the_first_reason_explains_the_mode() -> None:
    for f in ALL:
        ev = evaluate(f)
        first = ev.reason
        if ev.mode == FAILURE:
            assert "autoIngestEnabled" in first or "receiver" in first or "store" in first
            if not f.store_writable:
                assert first.startswith("Writes to the store in /data fail"), first
        elif ev.mode == OTEL_ONLY:
            assert "not expected" in first
        elif ev.mode == DEGRADED_STREAMING:
            assert "sidecar" in first or "codex app-server" in first or "handshake" in first.lower()
        else:
            assert first == HEALTHY_REASON


def test_health_recovers_when_its_facts_hold_again() -> None:
    """Nothing is remembered: a bad frame or a missed probe stops counting as soon as it is gone."""
    healthy = ModeFacts(True, "listening", True, False, "running", True, True, True, True, True)
    assert evaluate(healthy).mode == HYBRID_ACTIVE
    odd_frame = ModeFacts(True, "listening", True, False, "degraded", True, True, True, True, False)
    assert evaluate(odd_frame).mode == DEGRADED_STREAMING
    assert evaluate(healthy).mode == HYBRID_ACTIVE
    silent = ModeFacts(True, "listening", True, False, "degraded", True, True, True, False, True)
    assert evaluate(silent).reasons == ("The sidecar did not answer the liveness probe.",)
    assert evaluate(healthy).mode == HYBRID_ACTIVE


def test_a_failed_write_is_failure_whatever_else_holds() -> None:
    """The storage fact alone decides FAILURE: the baseline cannot be kept, however healthy the rest is."""
    healthy = ModeFacts(True, "listening", True, False, "running", True, True, True, True, True, data_dir="/d")
    assert evaluate(healthy).mode == HYBRID_ACTIVE
    full = ModeFacts(True, "listening", True, False, "running", True, True, True, True, True, store_writable=False,
                 store_problem="the disk is full", data_dir="/d")  # fmt: skip
    ev = evaluate(full)
    assert ev.mode == FAILURE and not ev.otel_baseline_healthy and ev.stream_healthy
    assert ev.reasons == (
        "Writes to the store in /d fail (the disk is full), so the OTEL baseline cannot be kept; captured "
        "batches are held in memory and committed when writes succeed again.",
    )
    assert evaluate(healthy).mode == HYBRID_ACTIVE  # nothing is remembered: writable again, healthy again


@pytest.mark.parametrize("writable", BOOLS)
def test_a_replaced_store_is_said_after_the_reasons_for_the_mode(writable: bool) -> None:
    note = "The store /d/capture.sqlite3 was damaged (x); it was moved aside to /d/y (kept) ..."
    f = ModeFacts(True, "listening", False, False, "inactive", False, False, False, False, True,
                  store_writable=writable, store_problem=None if writable else "an I/O error",
                  store_note=note)  # fmt: skip
    ev = evaluate(f)
    assert ev.reasons[-1] == note and len(ev.reasons) == (2 if writable else 3)
    assert ev.mode == (OTEL_ONLY if writable else FAILURE)
    assert ev.reason != note


def test_a_new_data_dir_is_told_how_to_leave_failure() -> None:
    """The default config has the baseline off: the reason says it is the default and what to do."""
    from bridge.config.model import IngestConfig

    assert IngestConfig().auto_ingest_enabled is False
    f = ModeFacts(
        auto_ingest_enabled=False, receiver_state="listening", receiver_message=None,
        stream_enrichment_enabled=True, kill_switch=False, sidecar_state="inactive",
        handshake_complete=False, auth_confirmed=False, auth_mode_allowed=False,
        sidecar_alive=False, frames_valid=True, required_auth_mode="chatgpt", auth_mode=None,
    )  # fmt: skip
    ev = evaluate(f)
    assert ev.mode == FAILURE
    assert "default of a new data dir" in ev.reason
    assert 'set_ingest_config {"autoIngestEnabled": true}' in ev.reason
