"""The running/degraded rule and streamHealthy (docs/protocol.md §4.1, §4.3 H) as a table."""

from __future__ import annotations

import pytest

from bridge.sidecar.auth import AuthView, Handshake
from bridge.sidecar.status import DEGRADED, RUNNING, SidecarFacts, derive

CHATGPT = AuthView(state="authenticated", mode="chatgpt")
APIKEY = AuthView(state="authenticated", mode="apikey")
NONE = AuthView()
DONE = Handshake.INITIALIZED


def facts(**overrides: object) -> SidecarFacts:
    base: dict[str, object] = dict(
        process_up=True,
        handshake=DONE,
        auth=CHATGPT,
        required_mode="chatgpt",
        kill_switch=False,
        alive=True,
        last_frame_valid=True,
    )
    base.update(overrides)
    return SidecarFacts(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "state", "healthy"),
    [
        ({}, RUNNING, True),
        ({"handshake": Handshake.ANSWERED}, RUNNING, False),  # progress, not degradation
        ({"handshake": Handshake.NOT_STARTED, "auth": NONE}, RUNNING, False),
        ({"auth": NONE}, RUNNING, False),
        ({"auth": AuthView(state="authenticating", login_pending=True)}, RUNNING, False),
        ({"auth": APIKEY}, DEGRADED, False),  # authenticated in a refused mode
        ({"auth": APIKEY, "required_mode": "apikey"}, RUNNING, True),
        ({"kill_switch": True}, DEGRADED, False),
        ({"alive": False}, DEGRADED, False),
        ({"last_frame_valid": False}, DEGRADED, False),
    ],
)
def test_state_and_health(overrides: dict[str, object], state: str, healthy: bool) -> None:
    health = derive(facts(**overrides))
    assert (health.state, health.stream_healthy) == (state, healthy)


def test_no_process_is_never_healthy() -> None:
    health = derive(facts(process_up=False))
    assert health.stream_healthy is False and health.degraded_reasons == ()


def test_health_recovers_when_the_facts_do() -> None:
    assert not derive(facts(last_frame_valid=False)).stream_healthy
    assert derive(facts(last_frame_valid=True)).stream_healthy
