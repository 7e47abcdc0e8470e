"""Migrations on real temp homes: the four starting points, dry runs, re-runs, rollbacks."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path

import msgspec
import pytest

from bridge.collector.errors import MigrationFailed, NothingToRollback
from tests.collector.support import (
    AGENTS,
    CANONICAL,
    CODEX,
    Clock,
    Link,
    Spec,
    build,
    home_hash,
    leftovers,
    not_bookkeeping,
    service,
    tree,
)

CODEX_SPEC = {
    "config.yaml": b"receivers: {otlp: {}}\n# codex\n",
    "only-codex.txt": b"\x00\x01binary\xff",
    "sub/deep/x.json": b'{"a": 1}',
    "empty": None,
    "link": Link("config.yaml"),
}
AGENTS_SPEC = {
    "config.yaml": b"receivers: {otlp: {}}\n# agents\n",
    "sub/y.json": b"{}",
}
CANONICAL_SPEC = {
    "config.yaml": b"# canonical, hand edited\n",
    "mine.txt": b"user content",
}


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "home"
    h.mkdir()
    return h


def test_fresh_home_is_not_needed_and_a_run_writes_nothing(home: Path) -> None:
    svc = service(home)
    assert svc.status().status == "not_needed"
    assert svc.status().migration_required is False
    result = svc.run()
    assert (result.migrated, result.status.status) == (False, "not_needed")
    assert result.actions == ["nothing to do: no legacy collector root exists"]
    assert os.listdir(home) == []


def test_legacy_only_is_migrated_byte_for_byte(home: Path) -> None:
    build(home / CODEX, CODEX_SPEC)
    (home / CODEX / "config.yaml").chmod(0o600)
    before = tree(home / CODEX)
    svc = service(home)
    status = svc.status()
    assert (status.status, status.migration_required, status.canonical_exists) == ("not_started", True, False)

    result = svc.run()
    assert result.migrated is True
    assert result.status.status == "migrated"
    assert result.status.migration_required is False
    assert result.status.last_error is None
    assert tree(home / CANONICAL) == before  # every file, mode and link identical
    assert tree(home / CODEX) == before  # the legacy root is left as it was
    backup = Path(result.status.last_backup_path or "")
    assert tree(backup / "legacy/1-codex-otel-collector") == before
    assert not (backup / "canonical").exists()
    assert leftovers(home) == []


def test_canonical_only_is_not_needed(home: Path) -> None:
    build(home / CANONICAL, CANONICAL_SPEC)
    before = home_hash(home)
    svc = service(home)
    assert svc.status().status == "not_needed"
    result = svc.run()
    assert (result.migrated, result.status.status) == (False, "not_needed")
    assert home_hash(home) == before
    assert not (home / ".agents/otel/.collector-migration.lock").exists()


def test_both_are_merged_by_the_rule(home: Path) -> None:
    build(home / CODEX, CODEX_SPEC)
    build(home / AGENTS, AGENTS_SPEC)
    build(home / CANONICAL, CANONICAL_SPEC)
    codex, agents, canonical = tree(home / CODEX), tree(home / AGENTS), tree(home / CANONICAL)

    result = service(home).run()
    assert result.migrated is True

    expected = dict(codex)
    expected.update(agents)  # the newer legacy root wins over the older one
    expected.update(canonical)  # existing canonical content wins over both
    assert tree(home / CANONICAL) == expected
    assert (home / CANONICAL / "config.yaml").read_bytes() == CANONICAL_SPEC["config.yaml"]
    assert (home / CANONICAL / "sub/y.json").read_bytes() == b"{}"
    conflict = [a for a in result.actions if a.startswith("conflict on config.yaml")]
    assert len(conflict) == 1 and str(home / CODEX) in conflict[0] and str(home / AGENTS) in conflict[0]
    # Nothing lost: the legacy roots untouched, the old canonical tree in the backup.
    assert tree(home / CODEX) == codex and tree(home / AGENTS) == agents
    backup = Path(result.status.last_backup_path or "")
    assert tree(backup / "canonical/collector") == canonical
    assert tree(backup / "legacy/2-agents-otel-collector") == agents
    manifest = msgspec.json.decode((backup / "manifest.json").read_bytes())
    assert manifest["conflicts"][0]["path"] == "config.yaml"


SCENARIOS: dict[str, dict[str, Spec]] = {
    "fresh": {},
    "legacy": {CODEX: CODEX_SPEC},
    "canonical": {CANONICAL: CANONICAL_SPEC},
    "both": {CODEX: CODEX_SPEC, AGENTS: AGENTS_SPEC, CANONICAL: CANONICAL_SPEC},
}


def _stamp_free(actions: list[str]) -> list[str]:
    return [re.sub(r"\d{8}T\d{6}Z(-\d+)?", "<T>", a) for a in actions]


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_dry_run_writes_nothing_and_says_exactly_what_the_run_does(home: Path, scenario: str) -> None:
    for rel, spec in SCENARIOS[scenario].items():
        build(home / rel, spec)
    before = home_hash(home)
    clock = Clock()
    dry = service(home, now=clock).run(dry_run=True)
    assert home_hash(home) == before
    assert dry.dry_run is True and dry.migrated is False
    assert dry.status == service(home).status()
    clock.now += timedelta(seconds=5)
    real = service(home, now=clock).run()
    assert _stamp_free(real.actions) == _stamp_free(dry.actions)
    # After the migration, a dry run still writes nothing.
    after = home_hash(home)
    service(home).run(dry_run=True)
    assert home_hash(home) == after


def test_rerun_is_a_no_op(home: Path) -> None:
    build(home / CODEX, CODEX_SPEC)
    build(home / CANONICAL, CANONICAL_SPEC)
    svc = service(home)
    svc.run()
    before = home_hash(home)
    again = svc.run()
    assert again.migrated is False
    assert again.actions == [f"nothing to do: {home / CANONICAL} already holds everything from the legacy roots"]
    assert home_hash(home) == before


def test_new_legacy_content_after_migration_is_picked_up_by_a_rerun(home: Path) -> None:
    build(home / CODEX, CODEX_SPEC)
    svc = service(home)
    first = svc.run()
    (home / CODEX / "later.yaml").write_bytes(b"new")
    (home / CODEX / "config.yaml").write_bytes(b"changed in the legacy root after the migration")
    status = svc.status()
    assert (status.status, status.migration_required) == ("migrated", True)
    second = svc.run()
    assert second.migrated is True
    assert (home / CANONICAL / "later.yaml").read_bytes() == b"new"
    # the canonical copy wins over the later legacy edit (the merge rule); the edit stays in the legacy root
    assert (home / CANONICAL / "config.yaml").read_bytes() == CODEX_SPEC["config.yaml"]
    assert second.status.last_backup_path != first.status.last_backup_path
    assert svc.status().migration_required is False


@pytest.mark.parametrize("scenario", ["legacy", "both"])
def test_rollback_restores_the_pre_migration_tree_exactly(home: Path, scenario: str) -> None:
    for rel, spec in SCENARIOS[scenario].items():
        build(home / rel, spec)
    before = home_hash(home, not_bookkeeping)
    canonical_before = tree(home / CANONICAL)
    svc = service(home)
    migrated = svc.run()
    migrated_tree = tree(home / CANONICAL)
    assert home_hash(home, not_bookkeeping) != before

    result = svc.rollback()
    assert (result.rolled_back, result.migrated, result.dry_run) == (True, False, False)
    assert result.status.status == "deferred"
    assert home_hash(home, not_bookkeeping) == before
    assert tree(home / CANONICAL) == canonical_before
    assert (home / CANONICAL).exists() is bool(canonical_before)
    # a snapshot of what it replaced is kept, and the migration's backup is intact
    replaced = Path(result.status.last_backup_path or "") / "replaced/collector"
    assert tree(replaced) == migrated_tree
    assert Path(migrated.status.last_backup_path or "").is_dir()


def test_rollback_twice_is_nothing_to_rollback_and_changes_nothing(home: Path) -> None:
    build(home / CODEX, CODEX_SPEC)
    svc = service(home)
    svc.run()
    svc.rollback()
    state = (home / ".agents/otel/.collector-migration.json").read_bytes()
    before = home_hash(home)
    with pytest.raises(NothingToRollback) as caught:
        svc.rollback()
    assert caught.value.code == -32022
    assert "deferred" in caught.value.message
    assert home_hash(home) == before
    assert (home / ".agents/otel/.collector-migration.json").read_bytes() == state
    assert svc.status().status == "deferred"


@pytest.mark.parametrize("scenario", ["fresh", "legacy", "canonical"])
def test_rollback_without_a_migration_changes_nothing(home: Path, scenario: str) -> None:
    for rel, spec in SCENARIOS[scenario].items():
        build(home / rel, spec)
    before_status = service(home).status()
    before = home_hash(home)
    with pytest.raises(NothingToRollback):
        service(home).rollback()
    assert home_hash(home) == before
    assert service(home).status() == before_status


def test_migrate_again_after_rollback(home: Path) -> None:
    build(home / CODEX, CODEX_SPEC)
    svc = service(home)
    svc.run()
    svc.rollback()
    assert svc.status().migration_required is True
    again = svc.run()
    assert again.migrated is True and again.status.status == "migrated"
    assert tree(home / CANONICAL) == tree(home / CODEX)


def test_rollback_restores_a_read_only_tree(home: Path) -> None:
    build(home / CODEX, {"a": b"1"})
    build(home / CANONICAL, {"ro/f": b"2"})
    (home / CANONICAL / "ro").chmod(0o555)
    before = tree(home / CANONICAL)
    svc = service(home)
    svc.run()
    assert tree(home / CANONICAL)["ro"] == ("dir", 0o555, "")
    svc.rollback()
    assert tree(home / CANONICAL) == before


def test_a_successful_run_clears_a_recorded_failure_even_with_nothing_to_do(home: Path) -> None:
    build(home / CODEX, {"a": b"1"})
    svc = service(home)
    svc.run()
    os.mkfifo(home / CODEX / "pipe")
    with pytest.raises(MigrationFailed):
        svc.run()
    failed = svc.status()
    assert failed.status == "failed" and "special file" in (failed.last_error or "")
    (home / CODEX / "pipe").unlink()
    dry = svc.run(dry_run=True)
    assert dry.actions[-1] == "clear the recorded failure (the tree needs no change)"
    assert svc.status().status == "failed"
    result = svc.run()
    assert result.actions == dry.actions
    assert (result.status.status, result.status.last_error) == ("migrated", None)
