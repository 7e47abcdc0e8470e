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
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from pathlib import Path
from typing import TypeVar

from bridge import clock
from bridge.errors import BridgeError, storage_unavailable
from bridge.store.health import StorageHealth, classify
from bridge.store.schema import MIGRATIONS

T = TypeVar("T")
log = logging.getLogger("bridge.store")

_SIDE_FILES = ("-wal", "-shm")
# Past this, the checkpointer finishes its catch-up under the write lock: two fsyncs (~25-35 ms on a
# busy virtual disk) that every commit waits for. A stream that never pauses fills ~16 MB/s of WAL, so
# at 32 MiB that stall came every 2 s; at 128 MiB every ~8 s, for a WAL that grows that far only
# while commits never pause.
WAL_CAP_BYTES = 128 * 1024 * 1024
# The WAL file keeps its size when it restarts (a commit that cut it back, SQLite's journal_size_limit,
# stalled 18-42 ms in ftruncate while the file system's journal was busy: the OTLP flood's worst live
# events, docs/performance.md session 14). It is cut back on the checkpointer's thread instead, once the
# store has been quiet for WAL_TRIM_QUIET_S and the file is larger than WAL_KEEP_BYTES; only a file past
# twice the cap is still cut by a commit (WAL_LIMIT_BYTES), so a runaway cannot keep its disk.
WAL_KEEP_BYTES = 16 * 1024 * 1024
WAL_TRIM_QUIET_S = 10.0
WAL_LIMIT_BYTES = 2 * WAL_CAP_BYTES
WAL_FRAME_HEADER_BYTES = 24
# A round every 0.25 s copies a quarter of what a round a second would, so its fsyncs have less to
# flush while commits go on: event lag p99 at 1,000 frames/s 1.4-2.0 -> ~0.7 ms, during the OTLP flood
# 6-11 -> 5-7 ms (docs/performance.md, session 7). A tick with nothing committed copies nothing.
CHECKPOINT_INTERVAL_S = 0.25
_CATCH_UP_ROUNDS = 3


class StorageUnavailable(BridgeError):
    """A write (or read) failed because of the storage; ``kind`` says how (disk_full, io_error…)."""

    def __init__(self, data_dir: Path, kind: str, detail: str) -> None:
        err = storage_unavailable(str(data_dir), detail, kind)
        super().__init__(err.code, err.message, kind=err.data["kind"], dataDir=str(data_dir), problem=kind)
        self.kind = kind
        self.detail = detail


WRITER_CACHE_KIB = 4096  # the capture transactions touch the tail of a few indexes: 4 MiB holds them
READER_CACHE_KIB = 2048  # host reads are small and rare; more cache only grows RSS over a long day


def _connect(path: Path, cache_kib: int) -> sqlite3.Connection:
    if not path.exists():  # a new store is private (0600); SQLite gives its -wal/-shm the same mode
        # Only before any connection has it open: closing a descriptor of the file would drop every POSIX
        # lock this process holds on it, and another process could then delete the WAL under our writer.
        with suppress(OSError):
            os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=10000")
    conn.execute(f"PRAGMA cache_size=-{cache_kib}")  # a bound on the page cache, in KiB (memory stays flat)
    # No checkpoint on the committing connection: a commit that crosses the threshold would copy the WAL
    # into the store and fsync before returning, a 10-30 ms stall of live events. The Checkpointer below
    # does it on a thread and connection of its own, and cuts the WAL file back when the store is quiet.
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
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
    stamp = stamp or clock.stamp()
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

    def __init__(self, path: Path, health: StorageHealth | None = None, migrations: list[str] = MIGRATIONS) -> None:
        self.path = path
        self._migrations = migrations
        self.health = health or StorageHealth(path.parent)
        self._write_lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._replaced: list[Callable[[], None]] = []
        self._ckpt_lock = threading.Lock()
        self._ckpt: sqlite3.Connection | None = None
        self.wal_frame_bytes = 4096 + WAL_FRAME_HEADER_BYTES  # one page and its header (read with the first checkpoint)
        self.checkpointer: Checkpointer | None = None
        self.commits = 0  # committed write transactions: the checkpointer skips a tick without any
        self.moved_to: Path | None = None
        try:
            self._open()
        except sqlite3.DatabaseError as exc:  # SQLite cannot read it at all (a damaged header page)
            found = classify(exc)
            if found is None or found[0] != "corrupt" or not path.exists():
                raise
            self._move_aside_and_reopen(f"opening it failed: {exc}")

    def _open(self) -> None:
        self._writer = _connect(self.path, WRITER_CACHE_KIB)
        try:
            self.schema_version = migrate(self._writer, self._migrations)
            self._reader = _connect(self.path, READER_CACHE_KIB)
        except BaseException:
            self._writer.close()
            raise

    def write_connection_pragma(self, pragma: str) -> None:
        """Set ``PRAGMA <pragma>`` on the writer connection (a store with another write pattern than the bridge's)."""
        with self._write_lock:
            self._writer.execute(f"PRAGMA {pragma}")

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
                self.commits += 1
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

    # ------------------------------------------------------------------ checkpoints

    def checkpoint(self, exclusive: bool = False) -> tuple[int, int, int]:
        """One ``PRAGMA wal_checkpoint(PASSIVE)`` on a connection of its own: ``(busy, wal frames, copied)``.

        PASSIVE never waits for the writer, so the capture commit never waits for it. ``exclusive`` runs it
        under the write lock, so it can copy the whole WAL (the next commit then restarts the WAL from its
        start). A storage fault is reported to the health fact (the mode goes to FAILURE) and raised.
        """
        return self._checkpoint("PASSIVE", exclusive)

    def trim_wal(self) -> bool:
        """Copy the whole WAL and cut its file to nothing (``TRUNCATE``), under the write lock.

        For a quiet store: a commit meanwhile waits for it. False when a reader kept it from finishing
        (it does not wait for readers; the next quiet tick tries again).
        """
        return self._checkpoint("TRUNCATE", True)[0] == 0

    def _checkpoint(self, mode: str, exclusive: bool) -> tuple[int, int, int]:
        guard: AbstractContextManager[object] = self._write_lock if exclusive else nullcontext()
        with guard, self._ckpt_lock:
            try:
                if self._ckpt is None:
                    self._ckpt = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                    self._ckpt.execute("PRAGMA busy_timeout=0")
                    page = int(self._ckpt.execute("PRAGMA page_size").fetchone()[0])
                    self.wal_frame_bytes = page + WAL_FRAME_HEADER_BYTES
                row = self._ckpt.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
            except sqlite3.Error as exc:
                mapped = self._fail(exc, "checkpoint")
                if mapped is not exc:
                    raise mapped from exc
                raise
        return int(row[0]), int(row[1]), int(row[2])

    def wal_bytes(self) -> int:
        try:
            return self.path.with_name(self.path.name + "-wal").stat().st_size
        except OSError:
            return 0

    def start_checkpoints(
        self,
        interval_s: float = CHECKPOINT_INTERVAL_S,
        cap_bytes: int = WAL_CAP_BYTES,
        keep_bytes: int = WAL_KEEP_BYTES,
        trim_quiet_s: float = WAL_TRIM_QUIET_S,
    ) -> None:
        """Checkpoint the WAL from a thread of its own from now on; :meth:`close` stops it."""
        if self.checkpointer is None:
            self.checkpointer = Checkpointer(self, interval_s, cap_bytes, keep_bytes, trim_quiet_s)
            self.checkpointer.start()

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
        with self._write_lock, self._read_lock, self._ckpt_lock:
            for name in ("_writer", "_reader", "_ckpt"):
                conn = getattr(self, name, None)
                if conn is not None:
                    with suppress(sqlite3.Error):
                        conn.close()
            self._ckpt = None  # reopened on the fresh store by the next checkpoint
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
        if self.checkpointer is not None:
            self.checkpointer.stop()
        with self._ckpt_lock:
            if self._ckpt is not None:
                self._ckpt.close()
                self._ckpt = None
        with self._write_lock:
            with suppress(sqlite3.Error):
                self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # a clean stop leaves an empty WAL
            self._writer.close()
        with self._read_lock:
            self._reader.close()


class Checkpointer:
    """Keeps the WAL short without ever stalling a commit (the writer has ``wal_autocheckpoint=0``).

    Every ``interval_s`` in which something was committed it runs PASSIVE checkpoints until one copies the
    whole WAL with no commit meanwhile (a few rounds: each only has what was committed during the one
    before), so the next commit restarts the WAL from its start. When a writer that never pauses keeps it
    from catching up and the WAL file passes ``cap_bytes``, one more round runs under the write lock right
    after an unlocked one (so it copies only a few pages): a short stall now and then instead of a WAL
    that grows without end. Once nothing has been committed for ``trim_quiet_s``, a WAL file larger than
    ``keep_bytes`` is cut back (:meth:`Database.trim_wal`): never by a commit, where the file system's
    journal could stall it. A storage fault is a fact (the health report, FAILURE); the
    thread keeps going and tries again at the next tick.
    """

    def __init__(
        self,
        db: Database,
        interval_s: float,
        cap_bytes: int,
        keep_bytes: int = WAL_KEEP_BYTES,
        trim_quiet_s: float = WAL_TRIM_QUIET_S,
    ) -> None:
        self.db = db
        self.interval_s = interval_s
        self.cap_bytes = cap_bytes
        self.keep_bytes = keep_bytes
        self.trim_quiet_s = trim_quiet_s
        self.runs = 0
        self.forced = 0
        self.trims = 0
        self._quiet_since: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="wal-checkpoint", daemon=True)
        self._seen = -1

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.tick()
            except Exception:
                log.warning("a WAL checkpoint failed; trying again in %.1f s", self.interval_s, exc_info=True)

    def tick(self) -> None:
        """Catch up with what was committed since the last tick; when nothing was for a while, trim the WAL file."""
        commits = self.db.commits
        if commits == self._seen:
            self._trim_when_quiet()
            return
        self._quiet_since = None
        self.runs += 1
        for _ in range(_CATCH_UP_ROUNDS):
            before = self.db.commits
            busy, frames, copied = self.db.checkpoint()
            if busy == 0 and copied >= frames and self.db.commits == before:
                self._seen = before  # all copied and nothing committed meanwhile: the next commit restarts it
                return
            if self._stop.is_set():
                return
            if frames * self.db.wal_frame_bytes > self.cap_bytes:  # the writer appends faster than we copy
                self.forced += 1
                before = self.db.commits
                self.db.checkpoint(exclusive=True)  # only what came in during the last round: short
                self._seen = before
                return

    def _trim_when_quiet(self) -> None:
        """Once per quiet spell long enough, cut a big WAL file back (a reader in the way: after another spell)."""
        now = time.monotonic()
        if self._quiet_since is None:
            self._quiet_since = now
            return
        if now - self._quiet_since < self.trim_quiet_s:
            return
        self._quiet_since = math.inf  # done for this spell: nothing more until the next commit
        if self.db.wal_bytes() > self.keep_bytes:
            if self.db.trim_wal():
                self.trims += 1
            else:
                self._quiet_since = now
