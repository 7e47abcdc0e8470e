"""The store's side of storage faults: which failures are faults, a failed write leaves no open
transaction, a full disk is reported and raised as -32040, a damaged store is moved aside."""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from bridge.store.db import Database, StorageUnavailable
from bridge.store.health import StorageHealth, classify, storage_error


def sqlite_error(code: int, message: str) -> sqlite3.Error:
    exc = sqlite3.OperationalError(message)
    exc.sqlite_errorcode = code  # type: ignore[attr-defined]
    return exc


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (sqlite_error(13, "database or disk is full"), "disk_full"),
        (sqlite_error(10 | (3 << 8), "disk I/O error"), "io_error"),  # an extended IOERR code
        (sqlite_error(8, "attempt to write a readonly database"), "read_only"),
        (sqlite_error(11, "database disk image is malformed"), "corrupt"),
        (sqlite_error(26, "file is not a database"), "corrupt"),
        (OSError(errno.ENOSPC, "No space left on device"), "disk_full"),
        (OSError(errno.EIO, "Input/output error"), "io_error"),
        (OSError(errno.EROFS, "Read-only file system"), "read_only"),
        (sqlite_error(5, "database is locked"), None),  # busy: not the storage's fault
        (sqlite_error(19, "UNIQUE constraint failed"), None),  # a bug, not a fault
        (KeyError("x"), None),
    ],
)
def test_which_failures_are_storage_faults(exc: BaseException, kind: str | None) -> None:
    found = classify(exc)
    assert (found[0] if found else None) == kind
    mapped = storage_error(exc, "/data")
    assert (mapped is not None) == (kind is not None)
    if mapped is not None:
        assert mapped.code == -32040 and mapped.data == {"kind": "storage_unavailable", "dataDir": "/data",
                                                          "problem": kind}  # fmt: skip
        assert "/data" in mapped.message


def test_a_fault_stays_until_cleared_and_listeners_hear_each_change(tmp_path: Path) -> None:
    health = StorageHealth(tmp_path)
    heard: list[bool] = []
    health.add_listener(lambda: heard.append(health.writable))
    assert health.report(KeyError("bug"), "capture") is None and health.writable
    fault = health.report(OSError(errno.ENOSPC, "No space left on device"), "capture")
    assert fault is not None and fault.kind == "disk_full" and fault.where == "capture"
    assert health.report(OSError(errno.EIO, "x"), "otlp") is fault  # the first fault stands until cleared
    assert health.failures_total == 2 and heard == [False]
    assert health.clear() and not health.clear()
    assert heard == [False, True] and health.recoveries_total == 1


@pytest.fixture
def small_fs(tmp_path: Path):  # type: ignore[no-untyped-def]
    where = tmp_path / "fs"
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(where)], check=False,
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False)


def fill(where: Path) -> Path:
    """Write zeros into a file under ``where`` until the file system says it is full; that file."""
    filler = where / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while os.write(fd, b"\0" * 4096) == 4096:
            pass
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


def test_a_full_disk_is_raised_as_storage_unavailable_and_probed_back(small_fs: Path) -> None:
    db = Database(small_fs / "capture.sqlite3")
    filler = fill(small_fs)
    big = "x" * 200_000
    with pytest.raises(StorageUnavailable) as raised:
        db.write(lambda c: c.execute("INSERT INTO kv VALUES ('big', ?, 0)", (big,)))
    assert raised.value.code == -32040 and raised.value.kind == "disk_full"
    assert db.health.fault is not None and db.health.fault.kind == "disk_full"
    assert not db._writer.in_transaction  # a failed write (or COMMIT) never leaves the transaction open
    os.unlink(filler)
    db.probe()  # works again; clearing is the probe loop's decision
    db.write(lambda c: c.execute("INSERT INTO kv VALUES ('big', ?, 0)", (big,)))
    assert db.read(lambda c: c.execute("SELECT length(value) FROM kv WHERE key = 'big'").fetchone()[0]) == 200_000
    db.close()


def _damage(path: Path, page: int) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    with open(path, "r+b") as fh:
        fh.seek((page - 1) * size)
        fh.write(bytes(range(256)) * (size // 256))


def test_a_damaged_page_found_by_quick_check_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "capture.sqlite3"
    db = Database(path)
    db.write(lambda c: c.executemany("INSERT INTO kv VALUES (?, ?, 0)", [(f"k{i}", "v" * 500) for i in range(50)]))
    db.close()
    _damage(path, 2)
    db = Database(path)  # still opens: the damage is deeper than the header
    replaced: list[bool] = []
    db.on_replaced(lambda: replaced.append(True))
    assert db.quick_check()
    moved = db.check_and_repair()
    assert moved is not None and moved.exists() and moved.name.startswith("capture.sqlite3.damaged-")
    assert replaced == [True] and db.moved_to == moved
    assert db.health.fault is not None and db.health.fault.kind == "corrupt"  # FAILURE until a probe writes
    assert db.health.moved_aside is not None and str(moved) in db.health.moved_aside
    assert db.quick_check() == [] and db.check_and_repair() is None
    db.probe()
    db.close()


def test_a_store_sqlite_cannot_open_is_moved_aside_at_open(tmp_path: Path) -> None:
    path = tmp_path / "capture.sqlite3"
    Database(path).close()
    _damage(path, 1)  # the header page: "file is not a database"
    db = Database(path)
    assert db.moved_to is not None and db.moved_to.exists()
    assert db.health.fault is not None and db.health.fault.kind == "corrupt"
    assert db.quick_check() == []
    db.close()


async def test_damage_met_while_running_is_repaired_by_the_probe(tmp_path: Path) -> None:
    """A write that meets SQLITE_CORRUPT later takes the same way: the probe checks, moves aside, clears."""
    from bridge.store.probe import StorageProbe

    path = tmp_path / "capture.sqlite3"
    db = Database(path)
    db.write(lambda c: c.executemany("INSERT INTO kv VALUES (?, ?, 0)", [(f"k{i}", "v" * 500) for i in range(50)]))
    db._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    _damage(path, 2)
    db.health.report(sqlite_error(11, "database disk image is malformed"), "capture")
    probe = StorageProbe(db)
    assert await probe.probe_once()
    assert db.moved_to is not None and db.moved_to.exists()
    assert db.health.writable and db.health.moved_aside is not None
    assert db.quick_check() == []
    db.close()


def test_a_full_disk_during_a_checkpoint_is_a_storage_fault(small_fs: Path) -> None:
    db = Database(small_fs / "capture.sqlite3")
    db.write(lambda c: c.execute("INSERT INTO kv VALUES ('big', ?, 0)", ("x" * 400_000,)))  # in the WAL only
    filler = fill(small_fs)
    with pytest.raises(StorageUnavailable) as raised:
        db.checkpoint()  # copying the WAL into the store needs room the disk no longer has
    assert raised.value.kind in ("disk_full", "io_error")
    assert db.health.fault is not None and db.health.fault.where == "checkpoint"
    os.unlink(filler)
    busy, frames, copied = db.checkpoint()
    assert busy == 0 and copied == frames > 0
    db.close()
