"""One bridge per data dir: an exclusive OS lock on ``bridge.lock``, which names the holder's pid."""

from __future__ import annotations

import os
from pathlib import Path

from bridge.platform import locks

FLAGS = os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)


class DataDirBusy(RuntimeError):
    def __init__(self, path: Path, pid: str) -> None:
        super().__init__(
            f"data dir {path.parent} is in use by capture-bridge pid {pid or 'unknown'}; "
            "stop that bridge or choose another --data-dir"
        )
        self.pid = pid


def acquire(path: Path) -> int:
    """Lock ``path`` for this process's lifetime; the fd must stay open (closing it releases the lock)."""
    fd = os.open(path, FLAGS, 0o600)
    try:
        taken = locks.try_lock(fd)
    except OSError:
        os.close(fd)
        raise
    if not taken:
        holder = locks.read_content(fd)
        os.close(fd)
        raise DataDirBusy(path, holder)
    locks.write_content(fd, f"{os.getpid()}\n")
    return fd
