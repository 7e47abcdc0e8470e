"""Hostile trees: each one a clear error, status ``failed``, and not a byte lost."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bridge.collector import fsops
from bridge.collector.errors import MigrationFailed
from tests.collector.support import (
    AGENTS,
    CANONICAL,
    CODEX,
    Link,
    build,
    home_hash,
    leftovers,
    not_bookkeeping,
    service,
    tree,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "home"
    h.mkdir()
    return h


def _fails_cleanly(home: Path, *needles: str, planned: bool = True) -> MigrationFailed:
    """Run: a -32020 naming the problem, status failed with it, nothing of the user's changed."""
    before = home_hash(home, not_bookkeeping)
    before_status = service(home).status()
    assert before_status.status != "failed"
    with pytest.raises(MigrationFailed) as caught:
        service(home).run()
    err = caught.value
    assert err.code == -32020 and err.kind == "migration_failed"
    for needle in needles:
        assert needle in err.message
    assert home_hash(home, not_bookkeeping) == before
    assert leftovers(home) == []
    assert not (home / ".agents/otel/.collector-backups").exists() or not any(
        (home / ".agents/otel/.collector-backups").iterdir()
    )
    status = service(home).status()
    assert status.status == "failed"
    assert status.last_error is not None and all(n in status.last_error for n in needles)
    assert status.last_attempt_at_iso is not None
    if planned:
        # A dry run of the same tree reports the same problem and writes nothing.
        after = home_hash(home)
        with pytest.raises(MigrationFailed):
            service(home).run(dry_run=True)
        assert home_hash(home) == after
    return err


def test_symlinked_legacy_root(home: Path, tmp_path: Path) -> None:
    build(tmp_path / "elsewhere", {"config.yaml": b"x"})
    (home / ".codex").mkdir()
    (home / CODEX).symlink_to(tmp_path / "elsewhere")
    err = _fails_cleanly(home, str(home / CODEX), "symlink")
    assert err.details["problems"][0]["code"] == "symlinked_root"


def test_symlinked_legacy_root_inside_the_home(home: Path) -> None:
    build(home / "real", {"config.yaml": b"x"})
    (home / ".agents").mkdir()
    (home / AGENTS).symlink_to(home / "real")
    _fails_cleanly(home, str(home / AGENTS), "symlink")


def test_symlinked_canonical_root(home: Path, tmp_path: Path) -> None:
    build(home / CODEX, {"a": b"1"})
    build(tmp_path / "elsewhere", {"b": b"2"})
    (home / ".agents/otel").mkdir(parents=True)
    (home / CANONICAL).symlink_to(tmp_path / "elsewhere")
    _fails_cleanly(home, str(home / CANONICAL), "symlink")
    assert tree(tmp_path / "elsewhere") == {"b": ("file", 0o644, tree(tmp_path / "elsewhere")["b"][2])}


def test_symlink_inside_pointing_outside_the_home(home: Path, tmp_path: Path) -> None:
    (tmp_path / "secret").write_bytes(b"outside")
    build(home / CODEX, {"config.yaml": b"x", "certs/ca.pem": Link(str(tmp_path / "secret"))})
    err = _fails_cleanly(home, str(home / CODEX / "certs/ca.pem"), "outside the home")
    assert err.details["problems"][0]["code"] == "symlink_outside_home"


def test_relative_symlink_climbing_out_of_the_home(home: Path) -> None:
    build(home / CODEX, {"l": Link("../../../../../../etc/passwd")})
    _fails_cleanly(home, str(home / CODEX / "l"), "outside the home")


@pytest.mark.parametrize("where", [CODEX, AGENTS, CANONICAL])
def test_a_file_where_a_directory_is_expected(home: Path, where: str) -> None:
    if where != CODEX:
        build(home / CODEX, {"a": b"1"})
    (home / where).parent.mkdir(parents=True, exist_ok=True)
    (home / where).write_bytes(b"i am a file")
    _fails_cleanly(home, str(home / where), "is a file where a directory is expected")


@pytest.mark.parametrize("what", [".agents", ".agents/otel"])
def test_state_directory_is_a_file_or_a_symlink(home: Path, tmp_path: Path, what: str) -> None:
    """The state cannot be kept there, so the failure is reported (and shown by status) without a write."""
    build(home / CODEX, {"a": b"1"})
    (home / what).parent.mkdir(parents=True, exist_ok=True)
    (home / what).write_bytes(b"file")
    before = home_hash(home)
    with pytest.raises(MigrationFailed) as caught:
        service(home).run()
    assert str(home / what) in caught.value.message
    assert home_hash(home) == before
    status = service(home).status()
    assert status.status == "failed" and str(home / what) in (status.last_error or "")
    (home / what).unlink()
    (tmp_path / "target").mkdir()
    (home / what).symlink_to(tmp_path / "target")
    with pytest.raises(MigrationFailed, match="symlink"):
        service(home).run()
    assert os.listdir(tmp_path / "target") == []


def test_special_file(home: Path) -> None:
    build(home / CODEX, {"a": b"1"})
    os.mkfifo(home / CODEX / "pipe")
    _fails_cleanly(home, str(home / CODEX / "pipe"), "special file")


def test_directory_in_one_root_file_in_another(home: Path) -> None:
    build(home / CODEX, {"conf/a": b"1"})
    build(home / AGENTS, {"conf": b"2"})
    _fails_cleanly(home, "conf", "make them agree")


def _deny(monkeypatch: pytest.MonkeyPatch, victim: Path) -> None:
    real = fsops.open_read

    def open_read(path: str) -> int:
        if Path(path) == victim:
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real(path)

    monkeypatch.setattr(fsops, "open_read", open_read)


def test_unreadable_file_injected(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build(home / CODEX, {"a": b"1", "locked.yaml": b"secret-ish"})
    _deny(monkeypatch, home / CODEX / "locked.yaml")
    err = _fails_cleanly(home, str(home / CODEX / "locked.yaml"), "Permission denied")
    assert err.details["problems"][0]["code"] == "unreadable"


@pytest.fixture
def nobody_home() -> Iterator[Path]:
    """A home owned by ``nobody`` in a directory ``nobody`` can reach."""
    base = Path(tempfile.mkdtemp(prefix="collector-nobody-"))
    base.chmod(0o755)
    home = base / "home"
    home.mkdir()
    try:
        yield home
    finally:
        subprocess.run(["rm", "-rf", str(base)], check=False)


_AS_NOBODY = """
import os, sys, json
from pathlib import Path
from bridge.collector.errors import MigrationError
from bridge.collector.roots import Roots
from bridge.collector.service import CollectorMigrationService
svc = CollectorMigrationService(Roots(Path(sys.argv[1])))
svc.status()  # load everything while the interpreter's files are still readable
import encodings.idna, msgspec.json  # noqa
os.setgid(65534); os.setuid(65534)
try:
    svc.run()
    print(json.dumps({"ok": True}))
except MigrationError as exc:
    print(json.dumps({"code": exc.code, "message": exc.message}))
print(json.dumps(msgspec.to_builtins(svc.status())))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop privileges; the injected case covers others")
def test_unreadable_file_with_dropped_privileges(nobody_home: Path) -> None:
    import json

    build(nobody_home / CODEX, {"a": b"1", "sub/locked.yaml": b"nobody may read this"})
    build(nobody_home / CANONICAL, {"mine": b"keep"})
    subprocess.run(["chown", "-R", "65534:65534", str(nobody_home)], check=True)
    (nobody_home / CODEX / "sub/locked.yaml").chmod(0o000)
    before = home_hash(nobody_home, not_bookkeeping)
    proc = subprocess.run(
        [sys.executable, "-c", _AS_NOBODY, str(nobody_home)], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    first, status = (json.loads(line) for line in proc.stdout.splitlines())
    assert first["code"] == -32020
    assert str(nobody_home / CODEX / "sub/locked.yaml") in first["message"]
    assert "Permission denied" in first["message"]
    assert status["status"] == "failed"
    assert home_hash(nobody_home, not_bookkeeping) == before
    assert leftovers(nobody_home) == []


def _no_space_after(n: int) -> Callable[[str, str, str | None, int], None]:
    """A copy_file that copies ``n`` files, then half a file, then fails with ENOSPC."""
    real = fsops.copy_file
    count = {"n": 0}

    def copy_file(src: str, dst: str, digest: str | None, mode: int) -> None:
        count["n"] += 1
        if count["n"] > n:
            with open(src, "rb") as fh, open(dst, "wb") as out:
                out.write(fh.read()[:1])
            raise OSError(errno.ENOSPC, "No space left on device", dst)
        real(src, dst, digest, mode)

    return copy_file


@pytest.mark.parametrize("after", [0, 1, 3])
@pytest.mark.parametrize("with_canonical", [False, True])
def test_no_space_left(home: Path, monkeypatch: pytest.MonkeyPatch, after: int, with_canonical: bool) -> None:
    build(home / CODEX, {"a": b"1", "b": b"2", "c/d": b"3"})
    build(home / AGENTS, {"e": b"4"})
    if with_canonical:
        build(home / CANONICAL, {"mine": b"keep me"})
    canonical_before = tree(home / CANONICAL)
    monkeypatch.setattr(fsops, "copy_file", _no_space_after(after))
    _fails_cleanly(home, "no space left", planned=False)
    assert tree(home / CANONICAL) == canonical_before
    # Free the space: the next run completes and clears the failure.
    monkeypatch.undo()
    result = service(home).run()
    assert result.migrated is True
    status = service(home).status()
    assert (status.status, status.last_error) == ("migrated", None)
    assert (home / CANONICAL / "c/d").read_bytes() == b"3"


def test_a_file_changing_during_the_copy_is_an_error(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build(home / CODEX, {"a": b"1"})
    real = fsops.copy_file

    def copy_file(src: str, dst: str, digest: str | None, mode: int) -> None:
        Path(src).write_bytes(b"changed")
        real(src, dst, digest, mode)

    monkeypatch.setattr(fsops, "copy_file", copy_file)
    with pytest.raises(MigrationFailed, match="changed while it was being copied"):
        service(home).run()
    assert not (home / CANONICAL).exists()
    assert leftovers(home) == []


def test_a_failed_rollback_is_recorded_and_changes_nothing(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build(home / CODEX, {"a": b"1"})
    build(home / CANONICAL, {"mine": b"keep"})
    svc = service(home)
    svc.run()
    migrated = tree(home / CANONICAL)
    monkeypatch.setattr(fsops, "copy_file", _no_space_after(0))
    with pytest.raises(MigrationFailed, match="rollback failed: no space left"):
        svc.rollback()
    assert tree(home / CANONICAL) == migrated
    status = svc.status()
    assert status.status == "failed" and status.rollback_available
    monkeypatch.undo()
    assert svc.rollback().status.status == "deferred"
    assert tree(home / CANONICAL) == {"mine": migrated["mine"]}


def test_a_missing_backup_fails_the_rollback_clearly(home: Path) -> None:
    build(home / CODEX, {"a": b"1"})
    build(home / CANONICAL, {"mine": b"keep"})
    svc = service(home)
    backup = Path(svc.run().status.last_backup_path or "")
    fsops.remove_tree(backup / "canonical")
    migrated = tree(home / CANONICAL)
    with pytest.raises(MigrationFailed, match="missing or unreadable"):
        svc.rollback()
    assert tree(home / CANONICAL) == migrated
    assert svc.status().status == "failed"


def test_corrupt_state_file_is_reported_not_overwritten(home: Path) -> None:
    build(home / CODEX, {"a": b"1"})
    (home / ".agents/otel").mkdir(parents=True)
    (home / ".agents/otel/.collector-migration.json").write_bytes(b"{not json")
    before = home_hash(home)
    with pytest.raises(MigrationFailed, match="not a valid migration state file"):
        service(home).run()
    assert home_hash(home) == before
    status = service(home).status()
    assert status.status == "failed" and "move it aside" in (status.last_error or "")


def test_a_tampered_journal_never_makes_recovery_touch_other_paths(home: Path, tmp_path: Path) -> None:
    import msgspec

    from bridge.collector.roots import Roots
    from bridge.collector.state import Journal, MigrationState, write_state

    build(home / CODEX, {"a": b"1"})
    victim = build(tmp_path / "victim", {"precious": b"do not delete"})
    (home / ".agents/otel").mkdir(parents=True)
    journal = Journal(op="migrate", phase="prepare", started_at_iso="t", staging=str(victim), work_dir=str(victim),
                      aside=str(victim / "x"), canonical_existed=False)  # fmt: skip
    write_state(Roots(home), MigrationState(journal=journal))
    with pytest.raises(MigrationFailed, match="outside the migration's own directories"):
        service(home).run()
    assert (victim / "precious").read_bytes() == b"do not delete"
    state = msgspec.json.decode((home / ".agents/otel/.collector-migration.json").read_bytes())
    assert state["journal"]["staging"] == str(victim)  # left for a human to look at


def test_a_symlinked_lock_file_is_refused(home: Path, tmp_path: Path) -> None:
    build(home / CODEX, {"a": b"1"})
    (home / ".agents/otel").mkdir(parents=True)
    (home / ".agents/otel/.collector-migration.lock").symlink_to(tmp_path / "elsewhere.lock")
    with pytest.raises(MigrationFailed, match="migration lock"):
        service(home).run()
    assert not (tmp_path / "elsewhere.lock").exists()
    assert not (home / CANONICAL).exists()
