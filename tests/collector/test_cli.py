"""``capture-bridge migrate`` as a user runs it: a subprocess with ``$HOME`` on a temp home."""

from __future__ import annotations

import json
from pathlib import Path

from tests.collector.support import CANONICAL, CODEX, Link, build, cli, home_hash, tree


def test_dry_run_run_status_rollback_json(tmp_path: Path) -> None:
    home = tmp_path / "home"
    build(home / CODEX, {"config.yaml": b"c", "l": Link("config.yaml")})
    before = home_hash(home)

    dry = cli(home, "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)
    assert (plan["dryRun"], plan["migrated"], plan["rolledBack"]) == (True, False, False)
    assert plan["status"]["status"] == "not_started"
    assert f"copy {home / CODEX / 'config.yaml'} to {home / CANONICAL / 'config.yaml'}" in plan["actions"]
    assert home_hash(home) == before

    run = cli(home, "--json")
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert (result["migrated"], result["status"]["status"]) == (True, "migrated")
    assert set(result["status"]) >= {
        "canonicalRoot", "legacyRoot", "legacyRoots", "canonicalExists", "legacyExists", "migrationRequired",
        "status", "lastAttemptAtIso", "lastError", "lastBackupPath",
    }  # fmt: skip
    assert tree(home / CANONICAL) == tree(home / CODEX)

    status = cli(home, "--status", "--json")
    assert json.loads(status.stdout) == result["status"]

    back = cli(home, "--rollback", "--json")
    assert back.returncode == 0, back.stderr
    assert json.loads(back.stdout)["status"]["status"] == "deferred"
    assert not (home / CANONICAL).exists()

    again = cli(home, "--rollback", "--json")
    assert again.returncode == 4
    assert json.loads(again.stdout)["error"]["code"] == -32022
    assert again.stderr.startswith("capture-bridge migrate: There is no collector migration to roll back")


def test_readable_plan(tmp_path: Path) -> None:
    home = tmp_path / "home"
    build(home / CODEX, {"config.yaml": b"c"})
    proc = cli(home, "--dry-run")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "Collector migration plan (dry run; nothing was written):"
    assert lines[1].startswith("  1. create backup directory ")
    assert "status: not_started (migration required)" in lines
    assert any(line.endswith(f"rename the staged tree to {home / CANONICAL} (atomic)") for line in lines)

    done = cli(home)
    assert done.returncode == 0 and done.stdout.startswith("Collector migration done:")
    noop = cli(home)
    assert noop.stdout.startswith("Collector migration: nothing to do.")


def test_failure_exit_code_and_one_line_reason(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".codex").mkdir(parents=True)
    (home / CODEX).symlink_to(tmp_path)
    proc = cli(home)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and str(home / CODEX) in proc.stderr
    status = json.loads(cli(home, "--status", "--json").stdout)
    assert status["status"] == "failed" and str(home / CODEX) in status["lastError"]


def test_options_are_exclusive(tmp_path: Path) -> None:
    proc = cli(tmp_path, "--dry-run", "--rollback")
    assert proc.returncode == 2
    assert "not allowed with" in proc.stderr
