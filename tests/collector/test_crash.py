"""Crashes between steps (a subprocess exits hard at each named step) and errors raised there.

After any crash the canonical root is the old tree or the new one (with the
two-rename fallback it may be briefly absent, journaled); the next run then
completes the migration, and a rollback still restores the original.
"""

from __future__ import annotations

import errno
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.collector import fsops
from bridge.collector.errors import MigrationFailed, NothingToRollback
from tests.collector.support import AGENTS, CANONICAL, CODEX, Link, Spec, build, leftovers, service, tree

REPO = Path(__file__).resolve().parents[2]

SCENARIOS: dict[str, dict[str, Spec]] = {
    "legacy": {CODEX: {"config.yaml": b"codex", "sub/x": b"x", "l": Link("config.yaml")}},
    "both": {
        CODEX: {"config.yaml": b"codex", "sub/x": b"x", "l": Link("config.yaml")},
        AGENTS: {"config.yaml": b"agents", "y": b"y"},
        CANONICAL: {"config.yaml": b"canonical", "mine": b"mine"},
    },
}

_CRASH = """
import os, sys
from pathlib import Path
from bridge.collector import fsops
from bridge.collector.roots import Roots
from bridge.collector.service import CollectorMigrationService
home, op, step, exchange = sys.argv[1:5]
if exchange == "no":
    fsops.exchange = lambda a, b: False
def hook(name):
    if name == step:
        os._exit(17)
svc = CollectorMigrationService(Roots(Path(home)), hook=hook)
svc.rollback() if op == "rollback" else svc.run()
os._exit(0)
"""


def _crash(home: Path, op: str, step: str, exchange: bool) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _CRASH, str(home), op, step, "yes" if exchange else "no"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert proc.returncode == 17, f"step {step} never reached: {proc.stderr}"


def _make(base: Path, scenario: str, name: str) -> Path:
    home = base / name
    for rel, spec in SCENARIOS[scenario].items():
        build(home / rel, spec)
    return home


def _steps(base: Path, scenario: str, op: str, exchange: bool, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The named steps a clean run passes, and the old/new canonical trees."""
    home = _make(base, scenario, f"probe-{op}")
    seen: list[str] = []
    with monkeypatch.context() as m:
        if not exchange:
            m.setattr(fsops, "exchange", lambda a, b: False)
        if op == "rollback":
            service(home).run()
        service(home, hook=seen.append).rollback() if op == "rollback" else service(home, hook=seen.append).run()
    return seen


def _migrate_backups(home: Path) -> list[Path]:
    return sorted((home / ".agents/otel/.collector-backups").glob("*-migrate"))


@pytest.mark.parametrize("exchange", [True, False], ids=["exchange", "two-renames"])
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_crash_during_migration_then_rerun_completes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scenario: str, exchange: bool
) -> None:
    steps = _steps(tmp_path, scenario, "migrate", exchange, monkeypatch)
    assert steps[0] == "locked" and steps[-1] == "committed"
    assert ("exchanged" in steps) is (exchange and scenario == "both")
    reference = _make(tmp_path, scenario, "reference")
    old = tree(reference / CANONICAL)
    legacy = {rel: tree(reference / rel) for rel in (CODEX, AGENTS)}
    service(reference).run()
    new = tree(reference / CANONICAL)
    assert old != new

    for step in steps:
        home = _make(tmp_path, scenario, f"crash-{step}")
        _crash(home, "migrate", step, exchange)
        now = tree(home / CANONICAL)
        if not exchange and step == "moved_aside" and scenario == "both":
            assert now in (old, new, {}), step  # the documented instant of the fallback
        else:
            assert now in (old, new), step
        assert {rel: tree(home / rel) for rel in legacy} == legacy, step
        status = service(home).status()
        expected = {"locked": "not_started", "committed": "migrated"}.get(step, "failed")
        assert status.status == expected, step
        if expected == "failed":
            assert "interrupted" in (status.last_error or "")

        result = service(home).run()
        assert result.status.status == "migrated", step
        assert tree(home / CANONICAL) == new, step
        assert leftovers(home) == [], step
        backups = _migrate_backups(home)
        assert len(backups) == 1, (step, backups)
        assert tree(backups[0] / "canonical/collector") == old
        # and the original is still one rollback away
        service(home).rollback()
        assert tree(home / CANONICAL) == old, step
        assert {rel: tree(home / rel) for rel in legacy} == legacy, step


@pytest.mark.parametrize("exchange", [True, False], ids=["exchange", "two-renames"])
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_crash_during_rollback_then_rerun_completes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scenario: str, exchange: bool
) -> None:
    steps = _steps(tmp_path, scenario, "rollback", exchange, monkeypatch)
    assert steps[0] == "locked" and steps[-1] == "committed"
    for step in steps:
        home = _make(tmp_path, scenario, f"crash-{step}")
        old = tree(home / CANONICAL)
        service(home).run()
        migrated = tree(home / CANONICAL)
        _crash(home, "rollback", step, exchange)
        now = tree(home / CANONICAL)
        assert now in (old, migrated) or (not exchange and step == "moved_aside"), step
        if step == "committed":  # it had finished: a second rollback has nothing to do
            with pytest.raises(NothingToRollback):
                service(home).rollback()
        else:
            result = service(home).rollback()
            assert result.rolled_back is True and result.status.status == "deferred", step
        assert tree(home / CANONICAL) == old, step
        assert (home / CANONICAL).exists() is (scenario == "both"), step
        assert leftovers(home) == [], step


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_error_raised_at_each_step_leaves_old_or_new(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scenario: str
) -> None:
    steps = _steps(tmp_path, scenario, "migrate", True, monkeypatch)
    reference = _make(tmp_path, scenario, "reference")
    old = tree(reference / CANONICAL)
    service(reference).run()
    new = tree(reference / CANONICAL)
    for step in steps:
        home = _make(tmp_path, scenario, f"raise-{step}")

        def hook(name: str, step: str = step) -> None:
            if name == step:
                raise OSError(errno.ENOSPC, "No space left on device", "injected")

        try:
            service(home, hook=hook).run()
        except MigrationFailed as exc:
            assert "no space left" in exc.message
            assert tree(home / CANONICAL) == old, step
            assert service(home).status().status == "failed", step
        else:
            # Raised after the swap: the migration had happened, so it is completed.
            assert step in ("exchanged", "moved_aside", "renamed", "committed"), step
            assert tree(home / CANONICAL) == new, step
            assert service(home).status().status == "migrated", step
        assert leftovers(home) == [], step
        service(home).run()
        assert tree(home / CANONICAL) == new, step
        assert service(home).status().last_error is None
