"""One migration at a time per home: an OS lock on ``~/.agents/otel/.collector-migration.lock``.

The lock is non-blocking: the loser gets :class:`MigrationBusy` before it has
changed anything. The lock (``flock`` on Linux and macOS, ``LockFileEx`` on
Windows; see :mod:`bridge.platform.locks`) belongs to an open file, so two
bridges, the CLI and a bridge, or two threads of one process all exclude each
other. The lock file is never deleted (deleting a lock file races with its
next user), and a symlink in its place is refused where the OS can tell.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

from bridge.collector.errors import MigrationBusy, MigrationFailed
from bridge.platform import locks

_OPEN_FLAGS = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)

BUSY_MESSAGE = "Another collector migration is running (a bridge or the CLI holds the lock); try again when it ends."


class MigrationLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, creating the lock file (its directory must exist)."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | _OPEN_FLAGS, 0o600)
        except OSError as exc:
            raise MigrationFailed(
                f"Cannot open the migration lock {self.path} ({exc.strerror}); "
                "it must be a regular file you can write. Fix it, then run the migration again."
            ) from exc
        try:
            taken = locks.try_lock(fd)
        except OSError:
            os.close(fd)
            raise
        if not taken:
            os.close(fd)
            raise MigrationBusy(BUSY_MESSAGE)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                locks.unlock(fd)
            finally:
                os.close(fd)

    def __enter__(self) -> MigrationLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def held(path: Path) -> bool:
    """Whether someone holds the lock right now; creates nothing."""
    try:
        fd = os.open(path, os.O_RDONLY | _OPEN_FLAGS)
    except OSError:
        return False  # no lock file (or an unusable one): nobody can be holding it
    try:
        return locks.is_locked(fd)
    finally:
        os.close(fd)


def probe(path: Path) -> None:
    """Raise MigrationBusy if someone holds the lock (for dry runs and refusals, which write nothing)."""
    if held(path):
        raise MigrationBusy(BUSY_MESSAGE)
