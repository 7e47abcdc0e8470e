"""A bridge driving the real codex against the project's fake model, as the host would."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio

from bridge.peers import fence
from bridge.peers.install import codex_native_binary
from tests.peers.conftest import API_KEY, make_codex_env, require_fence
from tests.support.host import Host, spawn_bridge

LIVE = "session:live:event"


def stream_config(tmp_path: Path, base_url: str, **extra: Any) -> tuple[dict[str, Any], dict[str, str]]:
    require_fence()
    cx = make_codex_env(tmp_path / "peer", base_url)
    config: dict[str, Any] = {
        "appServerAuthMode": "apikey",
        "codex": {"binaryPath": str(codex_native_binary()), "args": list(fence.CODEX_SAFE_ARGS),
                  "home": str(cx.codex_home)},
        "approvals": {"timeoutMs": 30000},
    }  # fmt: skip
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    env = dict(cx.env)
    env.pop("CODEX_HOME", None)  # the bridge sets it from codex.home
    return config, env


@asynccontextmanager
async def streaming_bridge(tmp_path: Path, base_url: str, **extra: Any) -> AsyncIterator[tuple[Host, str]]:
    """A bridge with a started, handshaken, apikey-authenticated codex and one thread."""
    config, env = stream_config(tmp_path, base_url, **extra)
    workdir = tmp_path / "peer" / "work"
    async with spawn_bridge(tmp_path, config=config, env=env) as host:
        await host.call("start_codex_app_server")
        await host.call("codex_app_server_initialize")
        await host.call("codex_app_server_initialized")
        await host.call("codex_app_server_account_login_start", {"authMode": "apiKey", "apiKey": API_KEY})
        await host.wait_for(
            "codex-app-server-status", lambda p: p["authState"] == "authenticated" and p["streamHealthy"], timeout=30
        )
        started = await host.call(
            "codex_app_server_thread_start",
            {"cwd": str(workdir), "approvalPolicy": "untrusted", "sandbox": "workspace-write"},
        )
        yield host, started["thread"]["id"]


async def run_turn(host: Host, thread_id: str, text: str, timeout: float = 90) -> dict[str, Any]:
    """Start a turn and wait until its turn/completed was captured and pushed."""
    since = len(host.notifications)
    turn = await host.call("codex_app_server_turn_start", {"threadId": thread_id, "text": text})
    turn_id = turn["turn"]["id"]
    await host.wait_for(
        LIVE,
        lambda p: p.get("eventType") == "turn/completed" and p.get("turnId") == turn_id,
        timeout=timeout,
        since=since,
    )
    return turn


def live_events(host: Host) -> list[dict[str, Any]]:
    return [p for m, p in host.notifications if m == LIVE]


def completed_items(host: Host, thread_id: str) -> dict[str, dict[str, Any]]:
    """The final items as the host saw them live (item/completed payloads)."""
    out: dict[str, dict[str, Any]] = {}
    for p in live_events(host):
        if p.get("type") == "SessionDelta" and p["eventType"] == "item/completed" and p["threadId"] == thread_id:
            item = p["payload"]["item"]
            out[item["id"]] = item
    return out


async def settle(host: Host) -> None:
    await anyio.sleep(0.3)
