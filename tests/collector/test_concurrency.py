"""Two migrations at once: the loser gets -32021 (exit 3) and changes nothing, status included."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bridge.collector.errors import MigrationBusy
from tests.collector.support import AGENTS, CANONICAL, CODEX, build, cli, home_hash, service, tree

REPO = Path(__file__).resolve().parents[2]

_PAUSED = """
import os, sys, time
from pathlib import Path
from bridge.collector.roots import Roots
from bridge.collector.service import CollectorMigrationService
home, op, step, ready, go = sys.argv[1:6]
def hook(name):
    if name == step:
        Path(ready).touch()
        deadline = time.monotonic() + 60
        while not Path(go).exists():
            if time.monotonic() > deadline:
                os._exit(9)
            time.sleep(0.02)
svc = CollectorMigrationService(Roots(Path(home)), hook=hook)
result = svc.rollback() if op == "rollback" else svc.run()
print(result.status.status)
"""


def _wait(path: Path, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the first migration never reached its pause"
        time.sleep(0.02)


@pytest.mark.parametrize(("op", "step"), [("migrate", "locked"), ("migrate", "staged"), ("migrate", "journaled_swap"),
                                          ("rollback", "staged")])  # fmt: skip
def test_second_migration_is_busy_and_changes_nothing(tmp_path: Path, op: str, step: str) -> None:
    home = tmp_path / "home"
    build(home / CODEX, {"config.yaml": b"codex"})
    build(home / AGENTS, {"config.yaml": b"agents"})
    build(home / CANONICAL, {"mine": b"mine"})
    if op == "rollback":
        service(home).run()
    ready, go = tmp_path / "ready", tmp_path / "go"
    first = subprocess.Popen(
        [sys.executable, "-c", _PAUSED, str(home), op, step, str(ready), str(go)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        _wait(ready, first)
        before = home_hash(home)
        status_before = service(home).status()
        # under way, not interrupted: the previous status stands until it commits
        assert status_before.in_progress is True
        assert status_before.status == ("not_started" if op == "migrate" else "migrated")

        for args in (["--json"], ["--dry-run", "--json"], ["--rollback", "--json"]):
            proc = cli(home, *args)
            assert proc.returncode == 3, (args, proc.stdout, proc.stderr)
            error = json.loads(proc.stdout)["error"]
            assert (error["code"], error["data"]["kind"]) == (-32021, "migration_busy")
            assert proc.stderr.strip().count("\n") == 0 and "Another collector migration is running" in proc.stderr
        for call in (service(home).run, service(home).rollback, lambda: service(home).run(dry_run=True)):
            with pytest.raises(MigrationBusy) as caught:
                call()
            assert caught.value.code == -32021

        assert home_hash(home) == before
        assert service(home).status() == status_before
    finally:
        go.touch()
        out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert out.strip() == ("migrated" if op == "migrate" else "deferred")


def test_two_threads_of_one_process_exclude_each_other(tmp_path: Path) -> None:
    home = tmp_path / "home"
    build(home / CODEX, {"a": b"1"})
    paused, release = threading.Event(), threading.Event()

    def hook(name: str) -> None:
        if name == "staged":
            paused.set()
            assert release.wait(30)

    outcome: list[str] = []
    worker = threading.Thread(target=lambda: outcome.append(service(home, hook=hook).run().status.status))
    worker.start()
    try:
        assert paused.wait(30)
        with pytest.raises(MigrationBusy):
            service(home).run()
    finally:
        release.set()
        worker.join(30)
    assert outcome == ["migrated"]
    assert tree(home / CANONICAL) == tree(home / CODEX)
