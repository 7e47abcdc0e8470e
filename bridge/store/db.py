"""SQLite connection handling: WAL, migrations, one writer, many readers.

Writes go through :class:`Database.write`, which serialises them on a single
connection (one writer) and commits per call, so callers batch by putting
several statements in one call. ``synchronous=NORMAL`` in WAL mode means a
commit is durable against a process crash (kill -9) without an fsync per
commit; only a power loss may lose the newest transactions, never consistency.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TypeVar

from bridge.store.schema import MIGRATIONS

T = TypeVar("T")


def _connect(path: Path) -> sqlite3.Connection:
    with suppress(OSError):  # a new store is private (0600); SQLite gives its -wal/-shm the same mode
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=10000")
    conn.execute("PRAGMA cache_size=-32768")  # 32 MiB of page cache
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
            conn.execute("ROLLBACK")
            raise
    return len(migrations)


def _split(script: str) -> Iterator[str]:
    for part in script.split(";"):
        if part.strip():
            yield part


class Database:
    """The store of one data dir: a writer connection and a reader connection."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer = _connect(path)
        self.schema_version = migrate(self._writer)
        self._reader = _connect(path)
        self._write_lock = threading.Lock()
        self._read_lock = threading.Lock()

    def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in one IMMEDIATE transaction on the writer connection."""
        with self._write_lock:
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """A consistent snapshot for the duration of the block."""
        with self._read_lock:
            conn = self._reader
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")

    def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        with self.reading() as conn:
            return fn(conn)

    def close(self) -> None:
        with self._write_lock:
            with suppress(sqlite3.Error):
                self._writer.execute("PRAGMA wal_checkpoint(PASSIVE)")
            self._writer.close()
        with self._read_lock:
            self._reader.close()
