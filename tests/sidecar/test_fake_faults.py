"""Faults a real codex cannot be made to show, driven through a FAKE sidecar (tests/fakes/fake_sidecar.py).

The supervisor runs in-process here; the real-codex acceptance tests go
through a spawned ``capture-bridge serve``.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from bridge import errors
from bridge.errors import BridgeError
from bridge.sidecar.events import Spawned
from bridge.sidecar.protocol import Envelope
from bridge.sidecar.rpc_types import ProtocolFault
from tests.sidecar.support import (
    assert_no_leftovers,
    fake_config,
    marked_env,
    pid_alive,
    supervisor,
)

FAST: dict[str, Any] = {"start_settle": 0.5, "stop_eof_grace": 0.5, "stop_term_grace": 0.3, "stop_kill_grace": 1.0}


async def test_crash_on_start_is_32015_then_crash_loop(tmp_path: Path) -> None:
    spawned: list[Spawned] = []
    async with supervisor(tmp_path, fake_config("crash_on_start"), **FAST) as h:
        h.sup.hub.add_lifecycle_listener(lambda event: spawned.append(event) if isinstance(event, Spawned) else None)
        with pytest.raises(BridgeError) as caught:
            await h.sup.start()
        assert caught.value.code == errors.SIDECAR_SPAWN_FAILED
        assert sys.executable in caught.value.message
        status = await h.wait_status(lambda s: s["state"] == "crash_loop", timeout=30)
        assert status["restartAttemptsInWindow"] == 3
        assert status["restartBudget"] == 3
        assert status["pid"] is None
        assert "crash_loop" in status["lastError"]
        await anyio.sleep(1.0)  # no fourth process comes
        assert len(spawned) == 3
        assert h.sup.status().state == "crash_loop"
        assert h.sup.metrics()["restartEventsTotal"] == 2
        await assert_no_leftovers(tmp_path)
        # A command that needs the process says it does not run.
        with pytest.raises(BridgeError) as not_running:
            await h.sup.commands.initialize()
        assert not_running.value.code == errors.SIDECAR_NOT_RUNNING
        # Stop then start leaves crash_loop (with a binary that now works).
        stopped = await h.sup.stop()
        assert (stopped.state, stopped.restart_attempts_in_window) == ("inactive", 0)
        old = h.config.current
        h.sup.config_changed(old, h.config.update({"codex": {"args": fake_config("normal")["codex"]["args"]}}))
        started = await h.sup.start()
        assert (started.state, started.restart_attempts_in_window) == ("running", 0)


async def test_missing_binary_is_32015_naming_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "codex"
    async with supervisor(tmp_path, {"codex": {"binaryPath": str(missing)}}) as h:
        with pytest.raises(BridgeError) as caught:
            await h.sup.start()
        assert caught.value.code == errors.SIDECAR_SPAWN_FAILED
        assert str(missing) in caught.value.message and caught.value.data["path"] == str(missing)
        status = h.sup.status()
        assert status.state == "inactive" and str(missing) in (status.last_error or "")


async def test_non_executable_binary_is_32015(tmp_path: Path) -> None:
    plain = tmp_path / "codex"
    plain.write_text("#!/bin/sh\n")
    plain.chmod(0o644)
    async with supervisor(tmp_path, {"codex": {"binaryPath": str(plain)}}) as h:
        with pytest.raises(BridgeError) as caught:
            await h.sup.start()
        assert caught.value.code == errors.SIDECAR_SPAWN_FAILED
        assert "not executable" in caught.value.message and str(plain) in caught.value.message


async def test_binary_from_env_then_path(tmp_path: Path) -> None:
    from bridge.sidecar.process import resolve_binary

    exe = tmp_path / "bin" / "codex"
    exe.parent.mkdir()
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    assert resolve_binary(None, {"CAPTURE_BRIDGE_CODEX_BIN": str(exe)}) == str(exe)
    assert resolve_binary(None, {"PATH": str(exe.parent)}) == str(exe)
    assert resolve_binary(str(exe), {"CAPTURE_BRIDGE_CODEX_BIN": "/elsewhere"}) == str(exe)
    with pytest.raises(BridgeError) as caught:
        resolve_binary(None, {"PATH": str(tmp_path / "empty")})
    assert caught.value.code == errors.SIDECAR_SPAWN_FAILED and "PATH" in caught.value.message


async def test_order_errors(tmp_path: Path) -> None:
    async with supervisor(tmp_path, fake_config("normal"), **FAST) as h:
        with pytest.raises(BridgeError) as before_start:
            await h.sup.commands.initialize()
        assert before_start.value.code == errors.SIDECAR_NOT_RUNNING
        await h.sup.start()
        with pytest.raises(BridgeError) as early:
            await h.sup.commands.initialized()
        assert early.value.code == errors.HANDSHAKE_ORDER
        with pytest.raises(BridgeError) as login_early:
            await h.sup.commands.login_start("apikey", "sk-test-0000000000")
        assert login_early.value.code == errors.HANDSHAKE_ORDER
        await h.sup.commands.initialize()
        with pytest.raises(BridgeError) as still_early:
            await h.sup.commands.account_read()
        assert still_early.value.code == errors.HANDSHAKE_ORDER
        status = await h.sup.commands.initialized()
        assert status.initialized and status.auth_state == "needs_login"
        again = await h.sup.commands.initialize()  # idempotent once answered
        assert again.initialize_sent


async def test_garbage_frames_are_tolerated_and_not_sticky(tmp_path: Path) -> None:
    faults: list[ProtocolFault] = []
    async with supervisor(tmp_path, fake_config("garbage"), **FAST) as h:
        h.sup.hub.add_fault_listener(faults.append)
        await h.sup.start()
        await h.sup.commands.initialize()
        status = await h.sup.commands.initialized()
        assert status.initialized and status.auth_state == "needs_login"
        metrics = h.sup.metrics()
        assert metrics["sidecarProtocolErrorsTotal"] >= 10
        # Garbage arrives before every answer; each valid answer after it keeps the state clean.
        assert h.sup.status().state == "running"
        account = await h.sup.commands.account_read()
        assert account.auth_state == "needs_login"
        assert h.sup.metrics()["sidecarProtocolErrorsTotal"] > metrics["sidecarProtocolErrorsTotal"]
        assert {f.kind for f in faults} == {"parse_error"}
        assert len(faults) == h.sup.metrics()["sidecarProtocolErrorsTotal"]


async def test_oversized_frame_is_dropped_and_the_handshake_goes_on(tmp_path: Path) -> None:
    config = fake_config("oversized", limits={"maxFrameBytes": 1 << 20})
    env = marked_env(tmp_path) | {"FAKE_OVERSIZED_BYTES": str(3 << 20)}
    async with supervisor(tmp_path, config, environ=env, **FAST) as h:
        await h.sup.start()
        status = await h.sup.commands.initialize()
        assert status.initialize_sent and status.codex_version == "0.0.1"
        assert h.sup.metrics()["sidecarOversizedFramesTotal"] == 1


async def test_silent_sidecar_times_out_with_32014(tmp_path: Path) -> None:
    config = fake_config("silent", codex={"requestTimeoutMs": 300})
    async with supervisor(tmp_path, config, **FAST) as h:
        await h.sup.start()
        started = time.monotonic()
        with pytest.raises(BridgeError) as caught:
            await h.sup.commands.initialize()
        assert time.monotonic() - started < 0.3 * 3 + 1
        assert caught.value.code == errors.TIMEOUT
        metrics = h.sup.metrics()
        assert metrics["rpcTimeoutsTotal"] == 1 and metrics["pendingRpcs"] == 0
        status = h.sup.status()
        assert status.state == "running" and not status.initialize_sent
        assert "did not answer initialize" in (status.last_error or "")


async def test_liveness_probe_failure_degrades_until_frames_return(tmp_path: Path) -> None:
    config = fake_config("normal", codex={"requestTimeoutMs": 300})
    async with supervisor(tmp_path, config, liveness_idle=0.3, **FAST) as h:
        await h.sup.start()
        await h.sup.commands.initialize()
        await h.sup.commands.initialized()
        assert h.sup.status().state == "running"
        gen = h.sup.gen
        assert gen is not None
        os.kill(gen.conn.pid, signal.SIGSTOP)  # alive but mute
        try:
            status = await h.wait_status(lambda s: s["state"] == "degraded", timeout=10)
            assert "liveness" in status["lastError"]
        finally:
            os.kill(gen.conn.pid, signal.SIGCONT)
        await h.wait_status(lambda s: s["state"] == "running", timeout=10)


async def test_flood_of_unknown_notifications_is_counted(tmp_path: Path) -> None:
    received: list[Envelope] = []
    env = marked_env(tmp_path) | {"FAKE_FLOOD_COUNT": "20000"}
    async with supervisor(tmp_path, fake_config("flood"), environ=env, **FAST) as h:
        h.sup.hub.add_stream_listener(received.extend)
        await h.sup.start()
        await h.sup.commands.initialize()
        await h.sup.commands.initialized()
        with anyio.fail_after(30):
            while not received or received[-1].method != "fake/flood/done":
                await anyio.sleep(0.05)
        metrics = h.sup.metrics()
        assert metrics["unknownNotificationsByMethod"] == {"fake/flood": 20000, "fake/flood/done": 1}
        assert [e.method for e in received].count("fake/flood") == 20000
        assert h.sup.status().state == "running"


async def test_kill_switch_gates_the_stream_at_once(tmp_path: Path) -> None:
    received: list[Envelope] = []
    env = marked_env(tmp_path) | {"FAKE_FLOOD_COUNT": "500"}
    async with supervisor(tmp_path, fake_config("flood"), environ=env, **FAST) as h:
        h.sup.hub.add_stream_listener(received.extend)
        await h.sup.start()
        await h.sup.commands.initialize()
        await h.sup.set_kill_switch(True)
        await h.sup.commands.initialized()
        await anyio.sleep(0.5)
        assert received == []
        assert h.sup.metrics()["sidecarNotificationsTotal"] >= 500  # read, counted, not passed on
        status = h.sup.status()
        assert status.state == "degraded" and status.stream_kill_switch and not status.stream_healthy


async def test_unhandled_server_request_gets_32601(tmp_path: Path) -> None:
    received: list[Envelope] = []
    async with supervisor(tmp_path, fake_config("ask"), **FAST) as h:
        h.sup.hub.add_stream_listener(received.extend)
        await h.sup.start()
        await h.sup.commands.initialize()
        await h.sup.commands.initialized()
        with anyio.fail_after(10):
            while not any(e.method == "fake/answer" for e in received):
                await anyio.sleep(0.05)
    import msgspec

    answer = msgspec.json.decode(next(e for e in received if e.method == "fake/answer").params)
    assert answer["id"] == "ask-1" and answer["error"]["code"] == -32601


async def test_unexpected_exit_restarts_and_rehandshakes(tmp_path: Path) -> None:
    async with supervisor(tmp_path, fake_config("normal", appServerAuthMode="apikey"), **FAST) as h:
        await h.sup.start()
        await h.sup.commands.initialize()
        await h.sup.commands.initialized()
        await h.sup.commands.login_start("apiKey", "sk-test-fake-000000000")
        first = h.sup.status()
        assert first.stream_healthy
        mark = len(h.statuses())
        os.kill(first.pid or 0, signal.SIGKILL)
        # The fake forgets its login on restart (the real codex keeps it): the sidecar decides.
        status = await h.wait_status(
            lambda s: s["pid"] not in (None, first.pid) and s["initialized"] and s["authState"] == "needs_login",
            timeout=20,
            since=mark,
        )
        assert status["restartAttemptsInWindow"] == 1
        assert h.sup.metrics()["restartEventsTotal"] == 1
        assert "re-handshaken" in (h.sup.status().last_info or "")
        assert not pid_alive(first.pid or 0)


async def test_kill_switch_refuses_start_and_prevents_restart(tmp_path: Path) -> None:
    async with supervisor(tmp_path, fake_config("normal"), **FAST) as h:
        await h.sup.start()
        pid = h.sup.status().pid
        await h.sup.set_kill_switch(True)
        assert h.config.current.stream_kill_switch
        assert '"streamKillSwitch":true' in (tmp_path / "config.json").read_text()
        os.kill(pid or 0, signal.SIGKILL)
        status = await h.wait_status(lambda s: s["state"] == "inactive", timeout=10)
        assert "kill switch" in status["lastError"]
        await anyio.sleep(1.0)
        assert h.sup.status().state == "inactive"
        with pytest.raises(BridgeError) as caught:
            await h.sup.start()
        assert caught.value.code == errors.KILL_SWITCH_ENGAGED
        assert h.sup.status().pid is None
        await assert_no_leftovers(tmp_path)


async def test_stop_kills_a_stubborn_group(tmp_path: Path) -> None:
    async with supervisor(tmp_path, fake_config("stubborn"), **FAST) as h:
        await h.sup.start()
        with anyio.fail_after(10):  # the child is up when a second marked process exists
            while len([p for p in _marked(tmp_path)]) < 2:
                await anyio.sleep(0.05)
        started = time.monotonic()
        status = await h.sup.stop()
        elapsed = time.monotonic() - started
        assert status.state == "inactive" and status.pid is None
        assert elapsed < (0.5 + 0.3 + 1.0) * 3
        await assert_no_leftovers(tmp_path)


def _marked(tmp_path: Path) -> list[int]:
    from tests.sidecar.support import leftovers

    return [p.pid for p in leftovers(tmp_path) if "fake_sidecar" in p.cmdline]
