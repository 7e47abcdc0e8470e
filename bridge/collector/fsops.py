"""Low-level filesystem steps: verified copies, directory fsync, atomic exchange.

Every byte copied is hashed on the way and compared with what the scan saw, so
a copy is either byte-identical or an error. Tests replace :func:`open_read`
or :func:`copy_file` to inject EACCES or ENOSPC.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import hashlib
import os
import shutil
import stat
import sys
from pathlib import Path

CHUNK = 1 << 20


class ChangedDuringCopy(OSError):
    """A file's bytes differ from what the scan saw (it changed under us)."""


def open_read(path: str) -> int:
    """Open a regular file for reading without following a symlink."""
    return os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)


def file_digest(path: str) -> str:
    fd = open_read(path)
    try:
        h = hashlib.sha256()
        while chunk := os.read(fd, CHUNK):
            h.update(chunk)
        return h.hexdigest()
    finally:
        os.close(fd)


def copy_file(src: str, dst: str, expected_digest: str | None, mode: int) -> None:
    """Copy bytes, mode and mtime from ``src`` to a new ``dst``; fsync; verify the digest."""
    fd_in = open_read(src)
    try:
        st = os.fstat(fd_in)
        fd_out = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            h = hashlib.sha256()
            while chunk := os.read(fd_in, CHUNK):
                h.update(chunk)
                view = memoryview(chunk)
                while view:
                    n = os.write(fd_out, view)
                    view = view[n:]
            os.fchmod(fd_out, mode)
            os.fsync(fd_out)
        finally:
            os.close(fd_out)
        os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
    finally:
        os.close(fd_in)
    if expected_digest is not None and h.hexdigest() != expected_digest:
        raise ChangedDuringCopy(errno.EIO, f"{src} changed while it was being copied; run the migration again", src)


def fsync_dir(path: str | Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def identity(path: str | Path) -> tuple[int, int] | None:
    """``(st_dev, st_ino)`` of a path (not followed), or None if it does not exist."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino)


def is_real_dir(path: str | Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def remove_tree(path: str | Path) -> None:
    """Remove a tree the migration itself made (staging, incomplete backup); absent is fine."""
    p = Path(path)
    if p.is_symlink() or (p.exists() and not p.is_dir()):
        p.unlink()
        return
    if not p.exists():
        return
    # A copied read-only directory (mode 0o555) would block removing its children.
    os.chmod(p, 0o700)
    for dirpath, dirnames, _files in os.walk(p):
        for d in dirnames:
            full = os.path.join(dirpath, d)
            if not os.path.islink(full):
                os.chmod(full, 0o700)
    shutil.rmtree(p)


_RENAME_EXCHANGE = 2  # Linux renameat2 flag
_RENAME_SWAP = 2  # macOS renamex_np flag
_AT_FDCWD = -100


@functools.cache
def _libc() -> ctypes.CDLL:
    # The process's own symbols include libc on Linux and macOS (no find_library subprocess).
    return ctypes.CDLL(None, use_errno=True)


def exchange(a: str | Path, b: str | Path) -> bool:
    """Atomically swap two existing paths. False when the OS or filesystem cannot."""
    try:
        libc = _libc()
        if sys.platform.startswith("linux") and hasattr(libc, "renameat2"):
            fn = libc.renameat2
            fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
            rc = fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
        elif sys.platform == "darwin" and hasattr(libc, "renamex_np"):
            fn = libc.renamex_np
            fn.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_uint]
            rc = fn(os.fsencode(a), os.fsencode(b), _RENAME_SWAP)
        else:
            return False
    except (OSError, AttributeError):
        return False
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(a), None, str(b))
