"""One bridge per data dir: an exclusive ``flock`` on ``bridge.lock`` holding the pid."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class DataDirBusy(RuntimeError):
    def __init__(self, path: Path, pid: str) -> None:
        super().__init__(
            f"data dir {path.parent} is in use by capture-bridge pid {pid or 'unknown'}; "
            "stop that bridge or choose another --data-dir"
        )
        self.pid = pid


def acquire(path: Path) -> int:
    """Lock ``path`` for this process's lifetime; the fd must stay open."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
        os.close(fd)
        raise DataDirBusy(path, holder) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd
