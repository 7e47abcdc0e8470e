"""Attach mode over an in-memory daemon: the reconnect loop, its backoff, and what ends it.

No socket: :class:`tests.sidecar.memory.MemoryDaemon` stands in for the user's
``codex app-server daemon`` (``SupervisorOptions.connect``), so what is tested
is :class:`bridge.sidecar.attach_mode.AttachMode` itself (docs/attach.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from bridge import errors
from bridge.errors import BridgeError
from bridge.sidecar.attach import OBSERVER_CLIENT_NAME
from bridge.sidecar.events import Exited, LifecycleEvent, Spawned
from tests.sidecar.memory import MemoryDaemon
from tests.sidecar.support import supervisor

SOCKET = "/nonexistent/app-server-control/app-server-control.sock"
CONFIG: dict[str, Any] = {"codex": {"connection": "attach", "socketPath": SOCKET}, "appServerAuthMode": "apikey"}
FAST: dict[str, Any] = {"rng": lambda: 0.0, "stop_eof_grace": 0.5}  # no jitter: delays 0.25, 0.5, 1, 2 … s


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.01)


async def test_a_daemon_that_is_down_is_retried_with_growing_delays_until_it_answers(tmp_path: Path) -> None:
    daemon = MemoryDaemon(up=False)
    async with supervisor(tmp_path, CONFIG, connect=daemon, **FAST) as h:
        status = await h.sup.start("attach")  # returns after the first attempt
        assert (status.state, status.connection, status.stream_healthy) == ("starting", "attach", False)
        assert SOCKET in (status.last_error or "") and "retrying in 0.2 s" in (status.last_error or "")
        await until(lambda: daemon.attempts == 3)
        daemon.up = True
        running = await h.wait_status(lambda s: s["state"] == "running" and s["streamHealthy"])
        assert running["pid"] is None and running["initialized"] and running["authMode"] == "apikey"
        retries = [re.search(r"retrying in ([\d.]+) s", s["lastError"] or "") for s in h.statuses()]
        assert list(dict.fromkeys(m.group(1) for m in retries if m)) == ["0.2", "0.5", "1.0"]  # doubling
        assert not any(s["state"] == "crash_loop" for s in h.statuses())
        # the bridge initialized as the daemon's observer, never as its originator
        conn = daemon.connections[0]
        assert conn.client_names == [OBSERVER_CLIENT_NAME]
        await until(lambda: "thread/loaded/list" in conn.requests)  # then it looks for threads to follow
        assert conn.requests == ["initialize", "account/read", "thread/loaded/list"]


async def test_a_lost_connection_is_reconnected_and_handshaken_again_by_the_bridge(tmp_path: Path) -> None:
    daemon = MemoryDaemon()
    events: list[LifecycleEvent] = []
    async with supervisor(tmp_path, CONFIG, connect=daemon, **FAST) as h:
        h.sup.hub.add_lifecycle_listener(events.append)
        status = await h.sup.start("attach")
        assert (status.state, status.initialized, status.stream_healthy) == ("running", True, True)
        mark = len(h.statuses())
        daemon.connections[0].close(1001)  # the daemon restarts
        lost = await h.wait_status(lambda s: s["state"] == "starting", since=mark)
        assert "closed the connection" in lost["lastError"] and "reconnecting in 0.2 s" in lost["lastError"]
        assert not lost["streamHealthy"]
        back = await h.wait_status(lambda s: s["state"] == "running" and s["streamHealthy"], since=mark)
        assert back["initialized"] and back["lastError"] is None
        assert events == [
            Spawned(None, 1, "attach"),
            Exited(None, 1001, expected=False, connection="attach"),
            Spawned(None, 2, "attach"),
        ]
        # nobody asked: the bridge ran the whole handshake again on the new connection
        assert daemon.connections[1].client_names == [OBSERVER_CLIENT_NAME]
        assert daemon.attempts == 2 and h.sup.attach_mode.running


async def test_the_host_handshake_waits_for_the_bridges_own_and_the_account_stays_the_users(tmp_path: Path) -> None:
    daemon = MemoryDaemon()
    async with supervisor(tmp_path, CONFIG, connect=daemon, **FAST) as h:
        await h.sup.start("attach")
        assert (await h.sup.commands.initialize()).initialized
        assert (await h.sup.commands.initialized()).auth_state == "authenticated"
        assert daemon.connections[0].requests.count("initialize") == 1  # the host's steps sent nothing
        for refused in (h.sup.commands.logout(), h.sup.commands.login_start("apiKey", "sk-test-0000000000")):
            with pytest.raises(BridgeError) as caught:
                await refused
            assert caught.value.code == errors.NOT_ALLOWED
        with pytest.raises(BridgeError) as other_mode:
            await h.sup.start("spawn")
        assert other_mode.value.code == errors.NOT_ALLOWED
        h.sup.thread_followed("thr-1")
        assert h.sup.status().followed_thread_ids == ["thr-1"]
        assert h.sup.codex_info() == {
            "path": SOCKET, "version": "0.169.0", "connection": "attach", "followedThreadIds": ["thr-1"],
        }  # fmt: skip


async def test_a_daemon_that_made_the_bridge_its_originator_is_named_in_the_status(tmp_path: Path) -> None:
    daemon = MemoryDaemon(user_agent=f"{OBSERVER_CLIENT_NAME}/0.169.0 (a codex that changed)")
    async with supervisor(tmp_path, CONFIG, connect=daemon, **FAST) as h:
        status = await h.sup.start("attach")
        assert status.state == "running"
        assert "took the bridge's initialize as its originator" in (status.last_info or "")


async def test_a_stop_disconnects_and_nothing_reconnects(tmp_path: Path) -> None:
    daemon = MemoryDaemon()
    events: list[LifecycleEvent] = []
    async with supervisor(tmp_path, CONFIG, connect=daemon, **FAST) as h:
        h.sup.hub.add_lifecycle_listener(events.append)
        await h.sup.start("attach")
        stopped = await h.sup.stop()
        assert stopped.state == "inactive"
        assert events[-1] == Exited(None, None, expected=True, connection="attach")
        await until(lambda: not h.sup.attach_mode.running)
        assert daemon.attempts == 1


async def test_the_kill_switch_stops_the_retries_of_a_daemon_that_is_down(tmp_path: Path) -> None:
    daemon = MemoryDaemon(up=False)
    async with supervisor(tmp_path, CONFIG, connect=daemon, **FAST) as h:
        assert (await h.sup.start("attach")).state == "starting"
        status = await h.sup.set_kill_switch(True)
        assert status.state == "inactive"
        await until(lambda: not h.sup.attach_mode.running)
        attempts = daemon.attempts
        with pytest.raises(BridgeError) as caught:
            await h.sup.start("attach")
        assert caught.value.code == errors.KILL_SWITCH_ENGAGED
        assert daemon.attempts == attempts


async def test_a_connection_lost_with_the_kill_switch_on_is_not_reconnected(tmp_path: Path) -> None:
    daemon = MemoryDaemon()
    async with supervisor(tmp_path, CONFIG, connect=daemon, **FAST) as h:
        await h.sup.start("attach")
        assert (await h.sup.set_kill_switch(True)).state == "degraded"  # connected: it stays, without a stream
        daemon.connections[0].close()
        ended = await h.wait_status(lambda s: s["state"] == "inactive")
        assert ended["lastInfo"] == "Reconnecting to the codex app-server daemon stopped: the stream kill switch is on."
        assert not h.sup.attach_mode.running
        assert daemon.attempts == 1
