"""Non-blocking OS file locks on descriptors the caller opened, on every platform.

The exclusive lock is ``filelock.lock_descriptor``: ``flock`` on Linux and
macOS, ``LockFileEx`` on byte 0 on Windows. Both are released by the OS when
the holder dies, so a crash never leaves a stale lock. Because Windows locks
are mandatory, byte 0 of a lock file is reserved for the lock and any content
(the holder's pid) starts at offset 1, where other processes can still read it.
"""

from __future__ import annotations

import errno
import os
import sys

from filelock import lock_descriptor, unlock_descriptor

CONTENT_OFFSET = 1  # byte 0 is the Windows lock slot


def try_lock(fd: int) -> bool:
    """Take the exclusive lock on ``fd``; False when another open file holds it."""
    return lock_descriptor(fd, blocking=False)


def unlock(fd: int) -> None:
    unlock_descriptor(fd)


def is_locked(fd: int) -> bool:
    """Whether another open file holds the lock on ``fd``'s file; leaves it unlocked.

    On POSIX a shared ``flock`` probe is used, so two probes never see each
    other as holders; Windows has no shared byte-range probe through filelock,
    so an exclusive one is taken and released at once.
    """
    if sys.platform != "win32":
        import fcntl

        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return True
            raise
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    if not try_lock(fd):
        return True
    unlock(fd)
    return False


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
