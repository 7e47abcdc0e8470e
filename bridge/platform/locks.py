"""Non-blocking OS file locks on descriptors the caller opened, on every platform.

On Linux and macOS the lock is ``flock`` (``fcntl`` is imported only there:
Windows has no such module). On Windows it is
``filelock.lock_descriptor``: ``LockFileEx`` on byte 0, through a maintained
library rather than hand-written ``ctypes`` (filelock is only imported there,
keeping its import cost off the POSIX start-up path). Both locks are released
by the OS when the holder dies, so a crash never leaves a stale lock. Because
Windows locks are mandatory, byte 0 of a lock file is reserved for the lock
and any content (the holder's pid) starts at offset 1, where other processes
can still read it.
"""

from __future__ import annotations

import errno
import os
import sys

if sys.platform != "win32":
    import fcntl

CONTENT_OFFSET = 1  # byte 0 is the Windows lock slot
_CONTENDED = (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)


def try_lock(fd: int) -> bool:
    """Take the exclusive lock on ``fd``; False when another open file holds it."""
    if sys.platform == "win32":
        from filelock import lock_descriptor

        return lock_descriptor(fd, blocking=False)
    return _flock(fd, exclusive=True)


def unlock(fd: int) -> None:
    if sys.platform == "win32":
        from filelock import unlock_descriptor

        unlock_descriptor(fd)
        return
    fcntl.flock(fd, fcntl.LOCK_UN)


def is_locked(fd: int) -> bool:
    """Whether another open file holds the lock on ``fd``'s file; leaves it unlocked.

    POSIX probes with a shared lock, so two probes never see each other as
    holders; Windows takes the exclusive lock and returns it at once.
    """
    if sys.platform == "win32":
        if not try_lock(fd):
            return True
        unlock(fd)
        return False
    if not _flock(fd, exclusive=False):
        return True
    unlock(fd)
    return False


def _flock(fd: int, *, exclusive: bool) -> bool:
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in _CONTENDED:
            return False
        raise
    return True


def write_content(fd: int, text: str) -> None:
    """Replace what the lock file says (after the lock slot); the caller holds the lock."""
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, b"\n" + text.encode())


def read_content(fd: int, limit: int = 64) -> str:
    """What the lock file says, read past the lock slot (readable while another process holds it)."""
    try:
        os.lseek(fd, CONTENT_OFFSET, os.SEEK_SET)
        return os.read(fd, limit).decode(errors="replace").strip()
    except OSError:
        return ""
