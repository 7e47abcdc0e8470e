"""Acceptance against the real codex app-server 0.169.0, through a spawned ``capture-bridge serve``.

Every test runs the native codex binary inside the loopback-only fence (it
fails, never skips, outside it), with ``CODEX_SAFE_ARGS`` and a fenced
environment of its own.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import anyio
import pytest

from bridge.peers import fence
from tests.sidecar.support import API_KEY, MARK, assert_no_leftovers, leftovers, real_codex_config, require_fence
from tests.support.host import Host, HostError, spawn_bridge

pytestmark = pytest.mark.peer

STATUS = "codex-app-server-status"


def peer_setup(tmp_path: Path, **config: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """Config and environment for a bridge that runs the real codex, fenced."""
    require_fence()
    base = fence.peer_env({}, tmp_path / "peer")
    env = {k: v for k, v in base.items()} | {MARK: str(tmp_path)}
    return real_codex_config(**config), env


async def handshake(host: Host) -> dict[str, Any]:
    started = await host.call("start_codex_app_server")
    assert started["state"] == "running" and isinstance(started["pid"], int)
    init = await host.call("codex_app_server_initialize")
    assert init["initializeSent"] is True and init["initialized"] is False
    assert init["codexVersion"] == "0.169.0"
    done: dict[str, Any] = await host.call("codex_app_server_initialized")
    assert done["initialized"] is True
    return done


def codex_processes(host: Host, tmp_path: Path) -> list[Any]:
    return [p for p in leftovers(tmp_path, host.pid) if "app-server" in p.cmdline]


async def test_handshake_auth_and_stop_with_the_real_codex(tmp_path: Path) -> None:
    config, env = peer_setup(tmp_path)
    async with spawn_bridge(tmp_path, config=config, env=env) as host:
        status = await handshake(host)
        assert status["authState"] == "needs_login" and status["streamHealthy"] is False
        info = await host.call("bridge_info")
        assert info["codex"] == {
            "path": config["codex"]["binaryPath"], "version": "0.169.0", "connection": "spawn", "followedThreadIds": [],
        }  # fmt: skip

        # apiKey login: the sidecar itself confirms apikey.
        login = await host.call("codex_app_server_account_login_start", {"authMode": "apiKey", "apiKey": API_KEY})
        assert (login["authState"], login["authMode"], login["authModeAllowed"]) == ("authenticated", "apikey", False)
        assert login["loginId"] is None and login["authUrl"] is None
        account = await host.call("codex_app_server_account_read")
        assert (account["authState"], account["authMode"], account["requiredMode"]) == (
            "authenticated",
            "apikey",
            "chatgpt",
        )

        # With the default config (chatgpt required) the host's apikey claim is refused.
        with pytest.raises(HostError) as refused:
            await host.call("codex_app_server_account_updated", {"authMode": "apikey", "authenticated": True})
        assert refused.value.code == -32012
        assert refused.value.message == "Unsupported auth mode: apikey (expected chatgpt)"
        assert refused.value.data["kind"] == "auth_not_confirmed"
        status = await host.call("get_codex_app_server_status")
        assert status["streamHealthy"] is False and status["state"] == "degraded"
        assert status["authModeAllowed"] is False
        assert status["lastError"] == "Unsupported auth mode: apikey (expected chatgpt)"

        # Logout, then a chatgpt login: a real authUrl and loginId; cancel makes codex report the failure.
        out = await host.call("codex_app_server_account_logout")
        assert out["authState"] == "logged_out" and out["authMode"] is None
        chatgpt = await host.call("codex_app_server_account_login_start", {})
        assert chatgpt["authState"] == "authenticating"
        assert chatgpt["authUrl"].startswith("https://auth.openai.com/oauth/authorize?")
        assert isinstance(chatgpt["loginId"], str) and len(chatgpt["loginId"]) > 8
        pushed = await host.wait_for(STATUS, lambda s: s["authUrl"] is not None)
        assert pushed["authUrl"] == chatgpt["authUrl"]
        cancelled = await host.call("codex_app_server_account_login_cancel", {"loginId": chatgpt["loginId"]})
        assert cancelled["authState"] == "needs_login"
        status = await host.call("get_codex_app_server_status")
        assert status["authUrl"] is None and "Login cancelled" in status["lastInfo"]

        # An unknown login id is codex's own error, passed on as -32016.
        with pytest.raises(HostError) as unknown:
            await host.call("codex_app_server_account_login_cancel", {"loginId": "nope"})
        assert unknown.value.code == -32016 and unknown.value.data["codexError"]["code"] == -32600

        codex_pid = status["pid"]
        assert codex_processes(host, tmp_path), "codex should be running under the bridge"
        stopped = await host.call("stop_codex_app_server")
        assert (stopped["state"], stopped["pid"]) == ("inactive", None)
        await assert_no_leftovers(tmp_path, host.pid, needles=(config["codex"]["binaryPath"],))
        assert not Path(f"/proc/{codex_pid}").exists()

        # The secret never left the bridge: not in notifications, not in its log.
        assert API_KEY not in json.dumps(host.notifications)
        assert API_KEY not in host.stderr()
    assert API_KEY not in host.stderr()


async def test_apikey_required_mode_reaches_authenticated(tmp_path: Path) -> None:
    config, env = peer_setup(tmp_path, appServerAuthMode="apikey")
    async with spawn_bridge(tmp_path, config=config, env=env) as host:
        await handshake(host)
        await host.call("codex_app_server_account_login_start", {"authMode": "apikey", "apiKey": API_KEY})
        done = await host.call("codex_app_server_account_login_completed", {"success": True})
        assert done["authState"] == "authenticated"
        updated = await host.call("codex_app_server_account_updated", {"authMode": "APIKEY", "authenticated": True})
        assert (updated["authState"], updated["authMode"], updated["authModeAllowed"]) == (
            "authenticated",
            "apikey",
            True,
        )
        status = await host.call("get_codex_app_server_status")
        assert (status["state"], status["streamHealthy"]) == ("running", True)
        # A claim the sidecar does not back is refused with its own view.
        with pytest.raises(HostError) as refused:
            await host.call("codex_app_server_account_updated", {"authMode": "apikey", "authenticated": False})
        assert refused.value.code == -32012
        assert refused.value.data["sidecar"] == {"authState": "authenticated", "authMode": "apikey"}
        assert (await host.call("get_codex_app_server_status"))["streamHealthy"] is True
        await host.call("stop_codex_app_server")
        await assert_no_leftovers(tmp_path, host.pid)


async def test_kill_9_restarts_rehandshakes_then_crash_loop(tmp_path: Path) -> None:
    config, env = peer_setup(tmp_path, appServerAuthMode="apikey")
    async with spawn_bridge(tmp_path, config=config, env=env) as host:
        await handshake(host)
        await host.call("codex_app_server_account_login_start", {"authMode": "apiKey", "apiKey": API_KEY})
        status = await host.call("get_codex_app_server_status")
        assert status["streamHealthy"] is True
        pids = [status["pid"]]
        for attempt in (1, 2):
            mark = len(host.notifications)
            os.kill(pids[-1], signal.SIGKILL)
            status = await host.wait_for(
                STATUS,
                lambda s: s["pid"] not in (None, *pids) and s["streamHealthy"],
                timeout=60,
                since=mark,
            )
            # Restarted, re-handshaken and re-authenticated without any host command.
            assert status["initialized"] and status["authState"] == "authenticated" and status["authMode"] == "apikey"
            assert status["restartAttemptsInWindow"] == attempt
            pids.append(status["pid"])
        mark = len(host.notifications)
        os.kill(pids[-1], signal.SIGKILL)
        status = await host.wait_for(STATUS, lambda s: s["state"] == "crash_loop", timeout=60, since=mark)
        assert status["restartAttemptsInWindow"] == 3 and status["restartBudget"] == 3
        assert status["pid"] is None and status["streamHealthy"] is False
        await anyio.sleep(2.0)  # no fourth process, now or a little later
        assert codex_processes(host, tmp_path) == []
        seen = {p["pid"] for m, p in host.notifications if m == STATUS and p["pid"] is not None}
        assert seen == set(pids)
        assert (await host.call("get_codex_app_server_status"))["state"] == "crash_loop"
        # Three spawns within 60 s used the budget: a start is refused and says when to retry ...
        await host.call("stop_codex_app_server")
        with pytest.raises(HostError) as refused:
            await host.call("start_codex_app_server")
        assert refused.value.code == -32015 and 0 < refused.value.data["retryAfterMs"] <= 60_000
        # ... until a codex.* change starts it over; the login survived in CODEX_HOME.
        await host.call("set_ingest_config", {"codex": {"requestTimeoutMs": 30_001}})
        again = await host.call("start_codex_app_server")
        assert again["state"] == "running" and again["restartAttemptsInWindow"] == 0
        await host.call("stop_codex_app_server")
        await assert_no_leftovers(tmp_path, host.pid)


async def test_kill_switch_refuses_start_prevents_restart_and_persists(tmp_path: Path) -> None:
    config, env = peer_setup(tmp_path)
    async with spawn_bridge(tmp_path, config=config, env=env) as host:
        await handshake(host)
        on = await host.call("codex_app_server_set_stream_kill_switch", {"enabled": True})
        assert on["streamKillSwitch"] is True and on["state"] == "degraded" and on["streamHealthy"] is False
        mark = len(host.notifications)
        os.kill(on["pid"], signal.SIGKILL)
        after = await host.wait_for(STATUS, lambda s: s["state"] == "inactive", timeout=30, since=mark)
        assert "kill switch" in after["lastError"]
        with pytest.raises(HostError) as refused:
            await host.call("start_codex_app_server")
        assert refused.value.code == -32013
        await anyio.sleep(1.0)
        assert codex_processes(host, tmp_path) == []
    # A new bridge on the same data dir still has the kill switch on.
    async with spawn_bridge(tmp_path, env=env, data_dir=tmp_path / "data") as host:
        status = await host.call("get_codex_app_server_status")
        assert status["streamKillSwitch"] is True and status["state"] == "inactive"
        with pytest.raises(HostError) as still:
            await host.call("start_codex_app_server")
        assert still.value.code == -32013
        off = await host.call("codex_app_server_set_stream_kill_switch", {"enabled": False})
        assert off["streamKillSwitch"] is False
        assert (await host.call("start_codex_app_server"))["state"] == "running"


async def test_bridge_exit_stops_codex(tmp_path: Path) -> None:
    config, env = peer_setup(tmp_path)
    async with spawn_bridge(tmp_path, config=config, env=env) as host:
        await handshake(host)
        assert codex_processes(host, tmp_path)
        started = anyio.current_time()
        await host.close_stdin()
        code = await host.wait_exit(9.0)  # docs/protocol.md §1: 3 s, with 3x slack
        assert code == 0 and anyio.current_time() - started < 9.0
    await assert_no_leftovers(tmp_path, needles=(config["codex"]["binaryPath"],))
