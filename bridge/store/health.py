"""Whether the store can be written, as one shared fact.

Every write goes through :class:`bridge.store.db.Database`, which reports a
failed write here when the failure is the storage's fault (disk full, I/O
error, read-only file system, damaged file) rather than a bug. A fault stays
until a probe proves writes work again (:meth:`StorageHealth.clear`), so one
lucky small write on a full disk does not make the mode flap. Listeners (the
capture mode, the held batches) hear every change; they are called on the
thread that saw it and must not block.
"""

from __future__ import annotations

import errno
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from bridge.errors import BridgeError, storage_unavailable

# sqlite3 primary result codes that mean the storage, not the statement, failed.
_SQLITE_FAULTS = {
    8: ("read_only", "the store is read-only"),  # SQLITE_READONLY
    10: ("io_error", "an I/O error"),  # SQLITE_IOERR
    11: ("corrupt", "the store file is damaged"),  # SQLITE_CORRUPT
    13: ("disk_full", "the disk is full"),  # SQLITE_FULL
    14: ("cannot_open", "the store file cannot be opened"),  # SQLITE_CANTOPEN
    23: ("read_only", "permission denied"),  # SQLITE_AUTH
    26: ("corrupt", "the store file is not a database"),  # SQLITE_NOTADB
}
_OS_FAULTS = {
    errno.ENOSPC: ("disk_full", "the disk is full"),
    errno.EDQUOT: ("disk_full", "the disk quota is exhausted"),
    errno.EIO: ("io_error", "an I/O error"),
    errno.EROFS: ("read_only", "the file system is read-only"),
    errno.EACCES: ("read_only", "permission denied"),
    errno.EPERM: ("read_only", "permission denied"),
}


def classify(exc: BaseException) -> tuple[str, str] | None:
    """``(kind, what)`` when ``exc`` is a storage fault; ``None`` for anything else (a bug, a busy lock)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sqlite3.Error):
            code = getattr(current, "sqlite_errorcode", None)
            if isinstance(code, int) and (code & 0xFF) in _SQLITE_FAULTS:
                kind, what = _SQLITE_FAULTS[code & 0xFF]
                return kind, f"{what} ({current})"
        elif isinstance(current, OSError) and current.errno in _OS_FAULTS:
            kind, what = _OS_FAULTS[current.errno]
            return kind, f"{what} ({current.strerror or current})"
        current = current.__cause__ or current.__context__
    return None


class Fault(msgspec.Struct, frozen=True):
    kind: str  # disk_full | io_error | read_only | corrupt | cannot_open
    detail: str  # what failed and why, for a person
    where: str  # which writer saw it first (capture, otlp, reliability, config, probe)
    since_ms: int


class StorageHealth:
    """The storage fact of one data dir: ``fault`` (or None), a note about a replaced store, counters."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._lock = threading.Lock()
        self._fault: Fault | None = None
        self.moved_aside: str | None = None  # a damaged store was moved here (a sentence for the reasons)
        self.failures_total = 0
        self.recoveries_total = 0
        self._listeners: list[Callable[[], None]] = []

    @property
    def fault(self) -> Fault | None:
        return self._fault

    @property
    def writable(self) -> bool:
        return self._fault is None

    def add_listener(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def report(self, exc: BaseException, where: str) -> Fault | None:
        """A write failed: record it when it is a storage fault; returns the fault (or None)."""
        found = classify(exc)
        if found is None:
            return None
        return self.set_fault(found[0], found[1], where)

    def set_fault(self, kind: str, detail: str, where: str) -> Fault:
        """Record a fault seen without an exception (a damaged store found by the quick check)."""
        with self._lock:
            self.failures_total += 1
            if self._fault is not None:
                return self._fault
            self._fault = Fault(kind, detail, where, int(time.time() * 1000))
            fault = self._fault
        self._changed()
        return fault

    def clear(self) -> bool:
        """A probe proved writes work again; returns whether there was a fault to clear."""
        with self._lock:
            if self._fault is None:
                return False
            self._fault = None
            self.recoveries_total += 1
        self._changed()
        return True

    def note_moved_aside(self, sentence: str) -> None:
        self.moved_aside = sentence
        self._changed()

    def _changed(self) -> None:
        for listener in list(self._listeners):
            try:
                listener()
            except Exception:  # pragma: no cover - a listener's bug must not hide the fault
                import logging

                logging.getLogger("bridge.store").exception("a storage health listener failed")


def storage_error(exc: BaseException, data_dir: str = "the data dir") -> BridgeError | None:
    """-32040 for a storage fault that escaped a command (a config file on a full disk…); else None."""
    found = classify(exc)
    if found is None:
        return None
    kind, what = found
    filename = getattr(exc, "filename", None)
    where = str(Path(filename).parent) if isinstance(filename, str) and filename else data_dir
    return storage_unavailable(where, what, kind)
