"""Host ``start`` retries against a crashing codex cannot outrun the crash-loop budget.

Uses the named FAKE sidecar (``tests/fakes/fake_sidecar.py crash_on_start``):
a real codex cannot be made to crash on every start.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.support.host import HostError, spawn_bridge

FAKE_SIDECAR = Path(__file__).resolve().parents[1] / "fakes" / "fake_sidecar.py"


def spawns(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


async def test_host_start_retries_share_the_spawn_budget(tmp_path: Path) -> None:
    log = tmp_path / "spawns.log"
    codex: dict[str, Any] = {
        "binaryPath": sys.executable,
        "args": [str(FAKE_SIDECAR), "crash_on_start"],
        "env": {"FAKE_SPAWN_LOG": str(log)},
    }
    config = {"otlpReceiver": {"port": 0}, "codex": codex}
    async with spawn_bridge(tmp_path, config=config) as host:
        await host.call("bridge_info")
        errors: list[dict[str, Any]] = []
        with anyio.fail_after(60):  # five starts 1.5 s apart, all well inside one 60 s window
            for _ in range(5):
                with pytest.raises(HostError) as caught:
                    await host.call("start_codex_app_server")
                errors.append({"code": caught.value.code, "data": caught.value.data})
                await anyio.sleep(1.5)
        assert [e["code"] for e in errors] == [-32015] * 5, errors
        assert spawns(log) == 3, log.read_text()
        refused = [e["data"] for e in errors if "retryAfterMs" in e["data"]]
        assert len(refused) >= 3, errors  # the later starts find the budget used up
        assert all(0 < d["retryAfterMs"] <= 60_000 for d in refused), refused
        assert refused[-1]["retryAfterMs"] < refused[0]["retryAfterMs"]  # it counts down
        status = await host.call("get_codex_app_server_status")
        assert status["state"] == "crash_loop" and "retry in" in status["lastError"].lower(), status
        await anyio.sleep(1.0)
        assert spawns(log) == 3  # nothing spawns behind the host's back either

        # A codex.* change is a new attempt: the budget starts over.
        mark = len(host.notifications)
        await host.call("set_ingest_config", {"codex": {"env": {"FAKE_SPAWN_LOG": str(log), "FIXED": "1"}}})
        with pytest.raises(HostError) as again:
            await host.call("start_codex_app_server")
        assert again.value.code == -32015 and "retryAfterMs" not in again.value.data, again.value.data
        assert spawns(log) >= 4
        await host.wait_for("codex-app-server-status", lambda p: p["state"] == "crash_loop", timeout=30, since=mark)
        await anyio.sleep(1.0)
        assert spawns(log) == 6  # the fresh budget, used up by the automatic restarts
