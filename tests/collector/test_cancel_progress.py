"""``$/cancelRequest`` and work-done progress for the migration commands, through a spawned bridge.

docs/protocol.md §1.1: a cancelled run answers -32800 and is undone (the home
is as it was); a run with a ``workDoneToken`` sends ``$/progress`` begin,
reports and end for it, all before its answer.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import anyio
import pytest

from bridge import errors
from bridge.collector import fsops
from bridge.collector.errors import MigrationCancelled
from bridge.collector.execute import CANCELLABLE
from tests.collector.support import AGENTS, CANONICAL, CODEX, build, service, tree
from tests.support.host import Host, spawn_bridge

NO_RECEIVER = {"otlpReceiver": {"enabled": False}}

# Hold the bridge's migration after a step until the test says go (the cancel is sent meanwhile).
_PAUSE_AFTER = """
import os, time
from pathlib import Path
from bridge.collector import execute
_step = execute.Executor.step
def step(self, name):
    if name == os.environ["PAUSE_STEP"]:
        Path(os.environ["PAUSE_READY"]).touch()
        deadline = time.monotonic() + 60
        while not Path(os.environ["PAUSE_GO"]).exists() and time.monotonic() < deadline:
            time.sleep(0.02)
    _step(self, name)
execute.Executor.step = step
"""

LOCK = ".agents/otel/.collector-migration.lock"


def _home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    build(home / CODEX, {"config.yaml": b"codex", "x": b"x", "sub/deep": b"deep"})
    build(home / AGENTS, {"config.yaml": b"agents"})
    return home


def _untouched(rel: str) -> bool:
    """What a run may leave even when cancelled: the lock file and the directory made to hold it."""
    return rel in (LOCK, ".agents/otel")


def _progress(host: Host, token: Any) -> list[tuple[int, dict[str, Any]]]:
    """(frame index, value) of every ``$/progress`` for ``token``, in arrival order."""
    return [
        (i, f["params"]["value"])
        for i, f in enumerate(host.frames)
        if isinstance(f, dict) and f.get("method") == "$/progress" and f["params"]["token"] == token
    ]


def _answer_index(host: Host, msg_id: Any) -> int:
    return next(i for i, f in enumerate(host.frames) if isinstance(f, dict) and f.get("id") == msg_id)


async def _cancel_while_paused(tmp_path: Path, host: Host, method: str, ready: Path, go: Path) -> dict[str, Any]:
    await host.send({"jsonrpc": "2.0", "id": "long", "method": method, "params": {"workDoneToken": "w"}})
    with anyio.fail_after(30):
        while not ready.exists():
            await anyio.sleep(0.02)
    await host.send({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": "long"}})
    # Frames are taken in order: once this is answered, the cancel has been seen.
    await host.call("get_collector_migration_status")
    go.touch()
    return await host.wait_response("long")


async def test_cancelled_run_answers_request_cancelled_and_leaves_the_home_untouched(tmp_path: Path) -> None:
    home = _home(tmp_path)
    ready, go = tmp_path / "ready", tmp_path / "go"
    env = {"PAUSE_STEP": "backed_up", "PAUSE_READY": str(ready), "PAUSE_GO": str(go)}
    before = tree(home)
    async with spawn_bridge(tmp_path, config=NO_RECEIVER, env=env, prelude=_PAUSE_AFTER) as host:
        answer = await _cancel_while_paused(tmp_path, host, "run_collector_migration", ready, go)
        assert answer["error"]["code"] == errors.REQUEST_CANCELLED == -32800, answer
        assert answer["error"]["data"]["kind"] == "request_cancelled"
        assert [v["kind"] for _, v in _progress(host, "w")][-1] == "end"
        status = await host.call("get_collector_migration_status")
        assert (status["status"], status["inProgress"], status["lastError"]) == ("not_started", False, None)
        # The backup was made before the cancel; the undo removed it and wrote the state back.
        after = tree(home)
        assert {k: v for k, v in after.items() if not _untouched(k)} == before
        assert not (home / CANONICAL).exists()
        # Nothing was half done: the same run goes through afterwards.
        done = await host.call("run_collector_migration")
        assert done["migrated"] is True and (home / CANONICAL / "sub/deep").read_bytes() == b"deep"


async def test_cancelled_rollback_leaves_the_migrated_home_untouched(tmp_path: Path) -> None:
    home = _home(tmp_path)
    ready, go = tmp_path / "ready", tmp_path / "go"
    env = {"PAUSE_STEP": "journaled", "PAUSE_READY": str(ready), "PAUSE_GO": str(go)}
    async with spawn_bridge(tmp_path, config=NO_RECEIVER, env=env, prelude=_PAUSE_AFTER) as host:
        go.touch()  # the migration itself runs through
        await host.call("run_collector_migration")
        go.unlink()
        ready.unlink()
        before = tree(home)
        answer = await _cancel_while_paused(tmp_path, host, "rollback_collector_migration", ready, go)
        assert answer["error"]["code"] == errors.REQUEST_CANCELLED, answer
        assert tree(home) == before
        status = await host.call("get_collector_migration_status")
        assert (status["status"], status["rollbackAvailable"]) == ("migrated", True)


async def test_run_with_a_work_done_token_reports_begin_report_end_before_its_answer(tmp_path: Path) -> None:
    _home(tmp_path)
    async with spawn_bridge(tmp_path, config=NO_RECEIVER) as host:
        await host.send(
            {"jsonrpc": "2.0", "id": 41, "method": "run_collector_migration", "params": {"workDoneToken": 7}}
        )
        answer = await host.wait_response(41)
        assert answer["result"]["migrated"] is True
        seen = _progress(host, 7)
        kinds = [v["kind"] for _, v in seen]
        assert kinds[0] == "begin" and kinds[-1] == "end" and "report" in kinds, kinds
        assert set(kinds[1:-1]) == {"report"}
        assert seen[0][1]["title"] == "Collector migration"
        percentages = [v["percentage"] for _, v in seen if v["kind"] == "report"]
        assert percentages == sorted(percentages)
        assert all(i < _answer_index(host, 41) for i, _ in seen)

        back = await host.call("rollback_collector_migration", {"workDoneToken": "back"})
        assert back["rolledBack"] is True
        kinds = [v["kind"] for _, v in _progress(host, "back")]
        assert kinds[0] == "begin" and kinds[-1] == "end" and "report" in kinds, kinds

        # Without a token, no progress is sent.
        count = sum(1 for f in host.frames if isinstance(f, dict) and f.get("method") == "$/progress")
        await host.call("run_collector_migration", {"dryRun": True})
        assert count == sum(1 for f in host.frames if isinstance(f, dict) and f.get("method") == "$/progress")


def _unstamped(actions: list[str]) -> list[str]:
    return [re.sub(r"\d{8}T\d{6}Z", "<stamp>", action) for action in actions]


async def test_cancel_of_an_unknown_or_finished_id_is_ignored(tmp_path: Path) -> None:
    _home(tmp_path)
    async with spawn_bridge(tmp_path, config=NO_RECEIVER) as host:
        done = await host.call("run_collector_migration", {"dryRun": True})
        frames = len(host.frames)
        for target in (1, 12345, "nobody", None):
            await host.send({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": target}})
        await host.send({"jsonrpc": "2.0", "method": "$/cancelRequest"})
        again = await host.call("run_collector_migration", {"dryRun": True})
        # The same plan (the backup folder is named after the second the plan was made).
        assert _unstamped(again["actions"]) == _unstamped(done["actions"])
        # Nothing answered the notifications: the only frame since is the answer to the call.
        answers = [f for f in host.frames[frames:] if isinstance(f, list) or "method" not in f]
        assert [a["result"] for a in answers] == [again]


@pytest.mark.parametrize("at", sorted(CANCELLABLE))
def test_a_run_cancelled_after_any_step_before_the_swap_is_undone(tmp_path: Path, at: str) -> None:
    home = _home(tmp_path)
    before = tree(home)
    steps: list[str] = []
    svc = service(home, hook=steps.append, cancelled=lambda: bool(steps) and steps[-1] == at)
    with pytest.raises(MigrationCancelled):
        svc.run()
    assert at in steps and "journaled_swap" not in steps
    assert {k: v for k, v in tree(home).items() if not _untouched(k)} == before
    assert service(home).run().migrated is True  # nothing half done is in the way


def test_a_cancel_after_the_swap_began_is_too_late_and_the_run_completes(tmp_path: Path) -> None:
    home = _home(tmp_path)
    steps: list[str] = []
    svc = service(home, hook=steps.append, cancelled=lambda: "journaled_swap" in steps)
    assert svc.run().migrated is True
    assert (home / CANONICAL / "config.yaml").read_bytes() == b"agents"


@pytest.mark.parametrize(("copying", "after"), [("backup", "journaled"), ("staging", "backed_up")])
def test_a_cancel_during_a_large_copy_stops_it_before_the_next_file(
    tmp_path: Path, copying: str, after: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    build(home / CODEX, {f"f{i:03}": b"x" * 64 for i in range(200)})
    build(home / AGENTS, {"config.yaml": b"agents"})
    before = tree(home)
    steps: list[str] = []
    copied: list[str] = []  # files copied since the step before the copy under test
    real_copy = fsops.copy_file

    def copy_file(src: str, dst: str, digest: str | None, mode: int) -> None:
        copied.append(dst)
        real_copy(src, dst, digest, mode)

    def hook(name: str) -> None:
        steps.append(name)
        if name == after:
            copied.clear()

    monkeypatch.setattr(fsops, "copy_file", copy_file)
    svc = service(home, hook=hook, cancelled=lambda: after in steps and len(copied) >= 10)
    with pytest.raises(MigrationCancelled):
        svc.run()
    assert len(copied) == 10  # stopped before the next file, not at the end of the 200-file copy
    assert steps[-1] == after and "staged" not in steps
    assert {k: v for k, v in tree(home).items() if not _untouched(k)} == before
    assert service(home).run().migrated is True
