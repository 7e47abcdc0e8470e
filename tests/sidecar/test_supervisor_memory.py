"""The supervisor over an in-memory connection: generations, restarts, the spawn budget, typed state.

No subprocess: :class:`tests.sidecar.memory.MemorySpawner` stands in for
spawning codex (``SupervisorOptions.spawn``), so what is tested is the
supervisor's own sequencing (docs/sidecar.md).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from bridge import errors
from bridge.errors import BridgeError
from bridge.sidecar.auth import Handshake
from bridge.sidecar.events import Exited, LifecycleEvent, Rehandshaken, SidecarState, Spawned
from bridge.sidecar.protocol import Envelope
from bridge.sidecar.rpc import RpcClient
from tests.sidecar.memory import MemorySpawner
from tests.sidecar.support import supervisor

CONFIG: dict[str, Any] = {"codex": {"binaryPath": sys.executable}, "appServerAuthMode": "apikey"}
FAST: dict[str, Any] = {"start_settle": 0.05, "rng": lambda: 0.0, "stop_eof_grace": 0.5}


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.01)


async def test_handshake_publishes_typed_state_and_events(tmp_path: Path) -> None:
    spawner = MemorySpawner()
    states: list[SidecarState] = []
    events: list[LifecycleEvent] = []
    async with supervisor(tmp_path, CONFIG, spawn=spawner, **FAST) as h:
        h.sup.hub.add_state_listener(states.append)
        h.sup.hub.add_lifecycle_listener(events.append)
        started = await h.sup.start()
        assert (started.state, started.pid) == ("running", 1001)
        await h.sup.commands.initialize()
        status = await h.sup.commands.initialized()
        assert status.initialized and status.auth_state == "authenticated" and status.auth_mode == "apikey"
        assert status.stream_healthy and status.codex_version == "0.169.0"
        assert spawner.connections[0].requests == ["initialize", "account/read"]
        assert events == [Spawned(1001, 1, "spawn")]
        last = states[-1]
        assert last.status == h.sup.status() and last.facts.handshake is Handshake.INITIALIZED
        assert last.auth_mode_allowed and last.alive and last.frames_valid
        # every published state is what the host heard, in order
        assert [s.status.state for s in states] == [p["state"] for p in h.statuses()[-len(states) :]]
        stopped = await h.sup.stop()
        assert stopped.state == "inactive"
        assert events[-1] == Exited(1001, 0, expected=True, connection="spawn")
        assert not states[-1].alive and states[-1].frames_valid


async def test_a_crash_is_restarted_and_rehandshaken_unasked(tmp_path: Path) -> None:
    spawner = MemorySpawner()
    events: list[LifecycleEvent] = []
    async with supervisor(tmp_path, CONFIG, spawn=spawner, **FAST) as h:
        h.sup.hub.add_lifecycle_listener(events.append)
        await h.sup.start()
        await h.sup.commands.initialize()
        await h.sup.commands.initialized()
        spawner.connections[0].crash(1)
        await until(lambda: any(isinstance(e, Rehandshaken) for e in events))
        assert events == [
            Spawned(1001, 1, "spawn"),
            Exited(1001, 1, expected=False, connection="spawn"),
            Spawned(1002, 2, "spawn"),
            Rehandshaken(1002, 2),
        ]
        status = h.sup.status()
        assert (status.state, status.pid, status.initialized, status.stream_healthy) == ("running", 1002, True, True)
        assert status.restart_attempts_in_window == 1
        assert h.sup.metrics()["restartEventsTotal"] == 1
        # the new generation ran the whole handshake again by itself
        assert spawner.connections[1].requests == ["initialize", "account/read"]


async def test_three_crashes_are_a_crash_loop_and_the_spawn_budget_answers_retry_after(tmp_path: Path) -> None:
    spawner = MemorySpawner()
    async with supervisor(tmp_path, CONFIG, spawn=spawner, **FAST) as h:
        await h.sup.start()
        for n in range(3):
            await until(lambda n=n: len(spawner.connections) == n + 1 and h.sup.status().pid == 1001 + n)
            spawner.connections[n].crash(1)
        await h.wait_status(lambda s: s["state"] == "crash_loop", timeout=10)
        assert len(spawner.connections) == 3  # no fourth spawn
        assert h.sup.status().restart_attempts_in_window == 3
        with pytest.raises(BridgeError) as caught:
            await h.sup.start()  # a host start draws from the same budget: 3 spawns within 60 s
        assert caught.value.code == errors.SIDECAR_SPAWN_FAILED
        assert 0 < caught.value.data["retryAfterMs"] <= 60_000 and caught.value.data["spawnBudget"] == 3
        assert len(spawner.connections) == 3 and h.sup.status().state == "crash_loop"


async def test_a_stop_gives_its_spawn_back(tmp_path: Path) -> None:
    spawner = MemorySpawner()
    async with supervisor(tmp_path, CONFIG, spawn=spawner, **FAST) as h:
        for _ in range(4):  # four healthy start/stop rounds: more than the budget of 3, never refused
            assert (await h.sup.start()).state == "running"
            assert (await h.sup.stop()).state == "inactive"
        assert len(spawner.connections) == 4


async def test_the_kill_switch_refuses_a_start_and_a_restart(tmp_path: Path) -> None:
    spawner = MemorySpawner()
    async with supervisor(tmp_path, CONFIG, spawn=spawner, **FAST) as h:
        await h.sup.start()
        await h.sup.set_kill_switch(True)
        assert h.sup.status().state == "degraded"
        spawner.connections[0].crash(1)
        await h.wait_status(lambda s: s["state"] == "inactive", timeout=10)
        assert "kill switch" in (h.sup.status().last_error or "")
        with pytest.raises(BridgeError) as caught:
            await h.sup.start()
        assert caught.value.code == errors.KILL_SWITCH_ENGAGED
        assert len(spawner.connections) == 1


async def test_the_hub_feeds_every_generation_and_the_kill_switch_gates_the_stream(tmp_path: Path) -> None:
    spawner = MemorySpawner()
    seen: list[str | None] = []
    clients: list[RpcClient] = []

    def broken(batch: list[Envelope]) -> None:
        raise RuntimeError("a subscriber that fails")

    async with supervisor(tmp_path, CONFIG, spawn=spawner, **FAST) as h:
        h.sup.hub.add_stream_listener(broken)  # it fails; the next one still gets every batch
        h.sup.hub.add_stream_listener(lambda batch: seen.extend(env.method for env in batch))
        h.sup.hub.add_client_listener(clients.append)
        await h.sup.start()
        await spawner.connections[0].notify("turn/started", {"threadId": "t"})
        await until(lambda: seen == ["turn/started"])
        await h.sup.set_kill_switch(True)
        await spawner.connections[0].notify("turn/completed", {"threadId": "t"})
        await until(lambda: h.sup.metrics()["sidecarNotificationsTotal"] == 2)  # read, and held back
        assert seen == ["turn/started"]
        await h.sup.set_kill_switch(False)
        spawner.connections[0].crash(1)  # the restart's new client is wired like the first
        await until(lambda: len(clients) == 2 and h.sup.status().state == "running")
        await spawner.connections[1].notify("turn/started", {"threadId": "t"})
        await until(lambda: seen == ["turn/started", "turn/started"])
        assert clients[0] is not clients[1] and clients[1] is h.sup.client
