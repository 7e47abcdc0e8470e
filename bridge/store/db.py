"""SQLite connection handling: WAL, migrations, one writer, many readers.

Writes go through :class:`Database.write`, which serialises them on a single
connection (one writer) and commits per call, so callers batch by putting
several statements in one call. ``synchronous=NORMAL`` in WAL mode means a
commit is durable against a process crash (kill -9) without an fsync per
commit; only a power loss may lose the newest transactions, never consistency.

A write that fails because of the storage (disk full, I/O error, read-only,
damaged file) is reported to :class:`~bridge.store.health.StorageHealth` and
raised as :class:`StorageUnavailable` (-32040 to the host). A damaged store is
moved aside (kept, next to the fresh one) and a fresh one opened: at open when
SQLite cannot read it at all, or when :meth:`Database.quick_check` (run off the
first-answer path) finds damage.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TypeVar

from bridge.errors import BridgeError, storage_unavailable
from bridge.store.health import StorageHealth, classify
from bridge.store.schema import MIGRATIONS

T = TypeVar("T")
log = logging.getLogger("bridge.store")

_SIDE_FILES = ("-wal", "-shm")


class StorageUnavailable(BridgeError):
    """A write (or read) failed because of the storage; ``kind`` says how (disk_full, io_error…)."""

    def __init__(self, data_dir: Path, kind: str, detail: str) -> None:
        err = storage_unavailable(str(data_dir), detail, kind)
        super().__init__(err.code, err.message, kind=err.data["kind"], dataDir=str(data_dir), problem=kind)
        self.kind = kind
        self.detail = detail


def _connect(path: Path) -> sqlite3.Connection:
    with suppress(OSError):  # a new store is private (0600); SQLite gives its -wal/-shm the same mode
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=10000")
    conn.execute("PRAGMA cache_size=-8192")  # 8 MiB of page cache per connection: more only grew RSS
    conn.execute("PRAGMA wal_autocheckpoint=4000")  # checkpoint (and fsync) every ~16 MiB of WAL, not every 4
    return conn


def migrate(conn: sqlite3.Connection, migrations: list[str] = MIGRATIONS) -> int:
    """Apply the migrations this database has not seen; returns the new version."""
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > len(migrations):
        raise RuntimeError(
            f"database schema version {version} is newer than this bridge knows ({len(migrations)}); "
            "upgrade capture-bridge or use another data dir"
        )
    for index in range(version, len(migrations)):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _split(migrations[index]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {index + 1}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return len(migrations)


def _split(script: str) -> Iterator[str]:
    for part in script.split(";"):
        if part.strip():
            yield part


def move_aside(path: Path, stamp: str | None = None) -> Path:
    """Rename a store and its WAL/SHM to ``<name>.damaged-<UTC stamp>`` (SQLite still opens the set)."""
    stamp = stamp or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = path.with_name(f"{path.name}.damaged-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
    os.replace(path, target)
    for suffix in _SIDE_FILES:
        side = path.with_name(path.name + suffix)
        if side.exists():
            os.replace(side, target.with_name(target.name + suffix))
    return target


class Database:
    """The store of one data dir: a writer connection and a reader connection."""

    def __init__(self, path: Path, health: StorageHealth | None = None) -> None:
        self.path = path
        self.health = health or StorageHealth(path.parent)
        self._write_lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._replaced: list[Callable[[], None]] = []
        self.moved_to: Path | None = None
        try:
            self._open()
        except sqlite3.DatabaseError as exc:  # SQLite cannot read it at all (a damaged header page)
            found = classify(exc)
            if found is None or found[0] != "corrupt" or not path.exists():
                raise
            self._move_aside_and_reopen(f"opening it failed: {exc}")

    def _open(self) -> None:
        self._writer = _connect(self.path)
        try:
            self.schema_version = migrate(self._writer)
            self._reader = _connect(self.path)
        except BaseException:
            self._writer.close()
            raise

    def on_replaced(self, listener: Callable[[], None]) -> None:
        """``listener()`` runs (under the write lock) after a damaged store was replaced by a fresh one."""
        self._replaced.append(listener)

    def _fail(self, exc: BaseException, where: str) -> BaseException:
        """Report a storage fault to the health fact; returns the error to raise (``exc`` itself otherwise)."""
        if self.health.report(exc, where) is None:
            return exc
        found = classify(exc)
        assert found is not None
        return StorageUnavailable(self.path.parent, found[0], found[1])

    def write(self, fn: Callable[[sqlite3.Connection], T], where: str = "store") -> T:
        """Run ``fn`` in one IMMEDIATE transaction on the writer connection."""
        with self._write_lock:
            conn = self._writer
            try:
                conn.execute("BEGIN IMMEDIATE")
                result = fn(conn)
                conn.execute("COMMIT")
                return result
            except BaseException as exc:
                if conn.in_transaction:  # a failed COMMIT (disk full) leaves the transaction open
                    with suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                if isinstance(exc, Exception):
                    mapped = self._fail(exc, where)
                    if mapped is not exc:
                        raise mapped from exc
                raise

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """A consistent snapshot for the duration of the block."""
        with self._read_lock:
            conn = self._reader
            conn.execute("BEGIN")
            try:
                yield conn
            except sqlite3.Error as exc:
                found = classify(exc)
                if found is not None and found[0] == "corrupt":
                    self.health.report(exc, "read")
                    raise StorageUnavailable(self.path.parent, found[0], found[1]) from exc
                raise
            finally:
                if conn.in_transaction:
                    with suppress(sqlite3.Error):  # a read-only snapshot: nothing to lose if ending it fails
                        conn.execute("COMMIT")

    def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        with self.reading() as conn:
            return fn(conn)

    # ------------------------------------------------------------------ probing and repair

    def probe(self) -> None:
        """A small real write (the probe that proves the storage works again); raises when it does not."""
        stamp = int(time.time() * 1000)
        self.write(
            lambda c: c.execute(
                "INSERT OR REPLACE INTO kv (key, value, updated_at_ms) VALUES ('store.probe', ?, ?)",
                (str(stamp), stamp),
            ),
            where="probe",
        )

    def quick_check(self) -> list[str]:
        """``PRAGMA quick_check`` on a connection of its own: [] when the store is sound, else the problems."""
        try:
            conn = sqlite3.connect(self.path, check_same_thread=False, timeout=10.0)
        except sqlite3.Error as exc:
            return [str(exc)]
        try:
            rows = [str(r[0]) for r in conn.execute("PRAGMA quick_check(20)").fetchall()]
        except sqlite3.DatabaseError as exc:
            found = classify(exc)
            if found is None or found[0] != "corrupt":
                raise
            rows = [str(exc)]
        finally:
            conn.close()
        return [] if rows == ["ok"] else rows

    def check_and_repair(self) -> Path | None:
        """Run the quick check; a damaged store is moved aside and replaced. Returns where it went."""
        problems = self.quick_check()
        if not problems:
            return None
        return self._move_aside_and_reopen("quick_check found: " + "; ".join(problems[:3]))

    def _move_aside_and_reopen(self, problem: str) -> Path:
        """Replace a damaged store by a fresh one, keeping the damaged files next to it.

        The health fact goes to ``corrupt`` first and stays there until the
        storage probe has written to the fresh store, so the capture mode
        records a FAILURE (and the release gate sees it) before it recovers.
        """
        self.health.set_fault("corrupt", f"the store file is damaged ({problem[:300]})", "quick_check")
        with self._write_lock, self._read_lock:
            for name in ("_writer", "_reader"):
                conn = getattr(self, name, None)
                if conn is not None:
                    with suppress(sqlite3.Error):
                        conn.close()
            moved = move_aside(self.path)
            self.moved_to = moved
            self._open()
            for listener in self._replaced:
                try:
                    listener()
                except Exception:
                    log.exception("a store-replaced listener failed")
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        log.error("the store %s was damaged (%s); it was moved to %s and a fresh store opened", self.path, problem,
                  moved)  # fmt: skip
        self.health.note_moved_aside(
            f"The store {self.path} was damaged ({problem[:300]}); it was moved aside to {moved} (kept) at {when} "
            "and a fresh store opened, so captures made before then are only in the moved file."
        )
        return moved

    def close(self) -> None:
        with self._write_lock:
            with suppress(sqlite3.Error):
                self._writer.execute("PRAGMA wal_checkpoint(PASSIVE)")
            self._writer.close()
        with self._read_lock:
            self._reader.close()
