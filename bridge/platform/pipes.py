"""Pipe capacity: Linux lets a process enlarge a pipe it holds (``F_SETPIPE_SZ``); elsewhere it stays as it is.

The bridge's two busy pipes (codex's stdout into it, its stdout to the host)
carry the stream: with 64 KiB a burst of live events takes several writes and
wake-ups on both sides, with 1 MiB usually one.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys

if sys.platform != "win32":  # Windows has no fcntl; its pipes keep their size
    import fcntl

PIPE_BYTES = 1 << 20


def enlarge_pipe(fd: int, size: int = PIPE_BYTES) -> int | None:
    """Ask for ``size`` bytes of pipe buffer on ``fd`` (a pipe end); the size it has after, None if unknown.

    Best effort: not a pipe, another system, or above ``/proc/sys/fs/pipe-max-size`` for an
    unprivileged user all leave the pipe as it was.
    """
    if sys.platform == "win32":
        return None
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None)
    get_size = getattr(fcntl, "F_GETPIPE_SZ", None)
    if set_size is None or get_size is None:
        return None
    with contextlib.suppress(OSError):
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return None
        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, set_size, size)
        return int(fcntl.fcntl(fd, get_size))
    return None
