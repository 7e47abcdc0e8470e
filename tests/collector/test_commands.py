"""The three host commands through a spawned ``capture-bridge serve`` whose ``$HOME`` is a temp home."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from bridge import errors
from bridge.collector.errors import MigrationBusy, MigrationFailed, NothingToRollback
from bridge.host.registry import REGISTRY, command_names
from tests.collector.support import AGENTS, CANONICAL, CODEX, build, home_hash, tree
from tests.support.host import HostError, spawn_bridge

REPO = Path(__file__).resolve().parents[2]
NO_RECEIVER = {"otlpReceiver": {"enabled": False}}
METHODS = ("get_collector_migration_status", "run_collector_migration", "rollback_collector_migration")


def test_commands_are_registered_with_the_contract_codes() -> None:
    assert set(METHODS) <= set(command_names())
    assert "dryRun" in REGISTRY["run_collector_migration"].params.__struct_encode_fields__
    assert (MigrationFailed.code, MigrationBusy.code, NothingToRollback.code) == (
        errors.MIGRATION_FAILED,
        errors.MIGRATION_BUSY,
        errors.NOTHING_TO_ROLLBACK,
    )
    for cls in (MigrationFailed, MigrationBusy, NothingToRollback):
        assert errors.KINDS[cls.code] == cls.kind


async def test_status_dry_run_run_rollback_through_the_bridge(tmp_path: Path) -> None:
    home = tmp_path / "home"
    build(home / CODEX, {"config.yaml": b"codex", "x": b"x"})
    build(home / AGENTS, {"config.yaml": b"agents"})
    async with spawn_bridge(tmp_path, config=NO_RECEIVER) as host:
        info = await host.call("bridge_info")
        assert set(METHODS) <= set(info["commands"])

        before = home_hash(home)
        status = await host.call("get_collector_migration_status")
        assert status["status"] == "not_started" and status["migrationRequired"] is True
        assert status["canonicalRoot"] == str(home / CANONICAL)
        assert status["legacyRoots"] == [str(home / CODEX), str(home / AGENTS)]
        assert status["legacyRoot"] == str(home / CODEX)

        for params in ({"dryRun": True}, {"dry_run": True}):
            dry = await host.call("run_collector_migration", params)
            assert (dry["dryRun"], dry["migrated"], dry["rolledBack"]) == (True, False, False)
            assert any(a.startswith("conflict on config.yaml") for a in dry["actions"])
        assert home_hash(home) == before

        with pytest.raises(HostError) as caught:
            await host.call("run_collector_migration", {"dryRun": True, "force": True})
        assert caught.value.code == errors.INVALID_PARAMS

        done = await host.call("run_collector_migration")
        assert (done["migrated"], done["dryRun"], done["status"]["status"]) == (True, False, "migrated")
        assert (home / CANONICAL / "config.yaml").read_bytes() == b"agents"
        assert (home / CANONICAL / "x").read_bytes() == b"x"

        back = await host.call("rollback_collector_migration")
        assert (back["rolledBack"], back["migrated"], back["dryRun"]) == (True, False, False)
        assert back["status"]["status"] == "deferred"
        assert not (home / CANONICAL).exists()

        with pytest.raises(HostError) as caught:
            await host.call("rollback_collector_migration")
        assert (caught.value.code, caught.value.data["kind"]) == (-32022, "nothing_to_rollback")
        assert (await host.call("get_collector_migration_status"))["status"] == "deferred"


async def test_failure_through_the_bridge(tmp_path: Path) -> None:
    home = tmp_path / "home"
    build(home / CODEX, {"config.yaml": b"codex"})
    (home / CODEX / "outside").symlink_to("/etc/hostname")
    async with spawn_bridge(tmp_path, config=NO_RECEIVER) as host:
        with pytest.raises(HostError) as caught:
            await host.call("run_collector_migration")
        err = caught.value
        assert (err.code, err.data["kind"]) == (-32020, "migration_failed")
        assert err.data["problems"][0]["code"] == "symlink_outside_home"
        assert str(home / CODEX / "outside") in err.message
        status = await host.call("get_collector_migration_status")
        assert status["status"] == "failed" and status["lastError"] and status["lastAttemptAtIso"]


_PAUSE_IN_BRIDGE = """
import os, time
from pathlib import Path
from bridge.collector import execute
_step = execute.Executor.step
def step(self, name):
    if name == "staged":
        Path(os.environ["PAUSE_READY"]).touch()
        deadline = time.monotonic() + 60
        while not Path(os.environ["PAUSE_GO"]).exists() and time.monotonic() < deadline:
            time.sleep(0.02)
    _step(self, name)
execute.Executor.step = step
"""


async def test_bridge_and_cli_exclude_each_other(tmp_path: Path) -> None:
    home = tmp_path / "home"
    build(home / CODEX, {"config.yaml": b"codex"})
    ready, go = tmp_path / "ready", tmp_path / "go"
    env = {"PAUSE_READY": str(ready), "PAUSE_GO": str(go)}
    async with spawn_bridge(tmp_path, config=NO_RECEIVER, env=env, prelude=_PAUSE_IN_BRIDGE) as host:
        results: list[dict[str, object]] = []

        async def migrate() -> None:
            results.append(await host.call("run_collector_migration"))

        async with anyio.create_task_group() as tg:
            tg.start_soon(migrate)
            with anyio.fail_after(30):
                while not ready.exists():
                    await anyio.sleep(0.02)
            before = home_hash(home)
            # The bridge keeps answering while its migration runs in a worker thread.
            during = await host.call("get_collector_migration_status")
            assert (during["status"], during["inProgress"]) == ("not_started", True)
            proc = await anyio.to_thread.run_sync(
                lambda: subprocess.run(
                    [sys.executable, "-m", "bridge", "migrate", "--json"],
                    capture_output=True,
                    text=True,
                    cwd=REPO,
                    env=dict(os.environ, HOME=str(home)),
                    timeout=60,
                )
            )
            assert proc.returncode == 3, proc.stderr
            assert home_hash(home) == before
            go.touch()
        assert results[0]["migrated"] is True
    assert tree(home / CANONICAL) == tree(home / CODEX)
