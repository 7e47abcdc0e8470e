"""Attach mode with no daemon listening: the bridge keeps trying, never crash-loops, and stops cleanly."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.host import HostError, spawn_bridge


async def test_no_daemon_means_starting_with_a_reason_until_stopped(tmp_path: Path) -> None:
    sock = tmp_path / "nowhere" / "app-server-control.sock"
    config = {"codex": {"connection": "attach", "socketPath": str(sock)}}
    async with spawn_bridge(tmp_path, config=config) as host:
        status = await host.call("start_codex_app_server")  # the configured mode
        assert status["connection"] == "attach"
        assert status["state"] == "starting" and not status["streamHealthy"]
        assert str(sock) in status["lastError"] and "retrying" in status["lastError"]
        again = await host.wait_for(
            "codex-app-server-status",
            lambda p: "retrying" in (p["lastError"] or "") and p["lastError"] != status["lastError"],
        )
        assert again["state"] == "starting"  # tries again; never crash_loop
        info = await host.call("bridge_info")
        assert info["codex"] == {"path": str(sock), "version": None, "connection": "attach", "followedThreadIds": []}
        with pytest.raises(HostError) as other_mode:
            await host.call("start_codex_app_server", {"connection": "spawn"})
        assert other_mode.value.code == -32017
        with pytest.raises(HostError) as login:
            await host.call("codex_app_server_account_logout")
        assert login.value.code == -32017
        stopped = await host.call("stop_codex_app_server")
        assert stopped["state"] == "inactive"
        assert not any(p.get("state") == "crash_loop" for m, p in host.notifications if m == "codex-app-server-status")
