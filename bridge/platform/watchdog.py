"""Ending the bridge when its host dies (``serve --parent-pid P``), on every platform.

A thread blocks until P is gone, then calls ``on_exit``. How it waits is a
per-platform list of strategies, the first that can be set up wins:

| platform | first choice | fallback |
|---|---|---|
| Linux | a pidfd (``os.pidfd_open``), readable when P exits | poll |
| macOS, BSDs | a kqueue ``EVFILT_PROC``/``NOTE_EXIT`` filter | poll |
| Windows | a process handle (``OpenProcess`` + ``WaitForSingleObject``) | poll |
| anything else | poll | none |

The first choices hold on to P itself, so a reused pid cannot fool them;
polling checks every 0.2 s whether P exists (``kill(P, 0)`` on POSIX, the
exit code of a query handle on Windows, where ``os.kill`` would terminate
P). A P that is already gone when the watch starts ends the bridge at once.
"""

from __future__ import annotations

import logging
import os
import select
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("bridge.watchdog")

POLL_INTERVAL_S = 0.2

Wait = Callable[[], None]  # blocks until the process is gone
Setup = Callable[[int], "Wait | None"]  # None: this strategy is not available here


class Gone(Exception):
    """The process no longer exists: nothing to wait for."""


# ---------------------------------------------------------------- POSIX


def posix_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by someone else
    return True


def pidfd(pid: int) -> Wait | None:
    """Linux 5.3+: a descriptor that becomes readable when ``pid`` exits."""
    open_pidfd: Callable[[int], int] | None = getattr(os, "pidfd_open", None)
    if open_pidfd is None:
        return None
    try:
        fd = open_pidfd(pid)
    except ProcessLookupError:
        raise Gone from None
    except OSError:
        return None  # e.g. ENOSYS in an old kernel or a seccomp sandbox

    def wait() -> None:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        try:
            while not poller.poll():
                pass
        finally:
            os.close(fd)

    return wait


def kqueue(pid: int) -> Wait | None:
    """macOS and the BSDs: a kqueue event on ``pid``'s exit."""
    make_queue: Callable[[], Any] | None = getattr(select, "kqueue", None)
    if make_queue is None:
        return None
    kevent: Callable[..., Any] = getattr(select, "kevent")  # noqa: B009  (absent from Linux stubs)
    queue = make_queue()
    event = kevent(
        pid,
        filter=getattr(select, "KQ_FILTER_PROC"),  # noqa: B009
        flags=getattr(select, "KQ_EV_ADD") | getattr(select, "KQ_EV_ONESHOT"),  # noqa: B009
        fflags=getattr(select, "KQ_NOTE_EXIT"),  # noqa: B009
    )
    try:
        queue.control([event], 0, 0)
    except ProcessLookupError:
        queue.close()
        raise Gone from None
    except OSError:
        queue.close()
        return None

    def wait() -> None:
        try:
            while not queue.control(None, 1, None):
                pass
        finally:
            queue.close()

    return wait


def posix_poll(pid: int) -> Wait:
    return _poll(pid, posix_alive)


# ---------------------------------------------------------------- Windows

SYNCHRONIZE = 0x00100000
PROCESS_QUERY_LIMITED_INFORMATION = 0x1000
INFINITE = 0xFFFFFFFF
ERROR_INVALID_PARAMETER = 87  # OpenProcess on a pid that does not exist
STILL_ACTIVE = 259


class Win32:
    """The four kernel32 calls the watchdog needs, through ctypes (tests hand in a fake)."""

    def __init__(self) -> None:
        import ctypes
        from ctypes import wintypes

        dll: Any = getattr(ctypes, "WinDLL")("kernel32", use_last_error=True)  # noqa: B009
        dll.OpenProcess.argtypes = [wintypes.DWORD, wintypes.BOOL, wintypes.DWORD]
        dll.OpenProcess.restype = wintypes.HANDLE
        dll.WaitForSingleObject.argtypes = [wintypes.HANDLE, wintypes.DWORD]
        dll.WaitForSingleObject.restype = wintypes.DWORD
        dll.GetExitCodeProcess.argtypes = [wintypes.HANDLE, ctypes.POINTER(wintypes.DWORD)]
        dll.GetExitCodeProcess.restype = wintypes.BOOL
        dll.CloseHandle.argtypes = [wintypes.HANDLE]
        dll.CloseHandle.restype = wintypes.BOOL
        self._dll, self._ctypes, self._dword = dll, ctypes, wintypes.DWORD

    def open(self, pid: int, access: int) -> tuple[Any, int]:
        """``(handle or None, error code)``."""
        handle = self._dll.OpenProcess(access, False, pid)
        return (handle, 0) if handle else (None, int(getattr(self._ctypes, "get_last_error")()))  # noqa: B009

    def wait(self, handle: Any) -> None:
        self._dll.WaitForSingleObject(handle, INFINITE)

    def exit_code(self, handle: Any) -> int | None:
        code = self._dword()
        ok = self._dll.GetExitCodeProcess(handle, self._ctypes.byref(code))
        return int(code.value) if ok else None

    def close(self, handle: Any) -> None:
        self._dll.CloseHandle(handle)


_win32: Win32 | None = None


def win32() -> Win32:
    global _win32
    if _win32 is None:
        _win32 = Win32()
    return _win32


def windows_handle(pid: int) -> Wait | None:
    """Windows: wait on a SYNCHRONIZE handle of ``pid``; it is signalled when the process ends."""
    api = win32()
    handle, error = api.open(pid, SYNCHRONIZE)
    if handle is None:
        if error == ERROR_INVALID_PARAMETER:
            raise Gone
        return None  # e.g. access denied: fall back to polling

    def wait() -> None:
        try:
            api.wait(handle)
        finally:
            api.close(handle)

    return wait


def windows_alive(pid: int) -> bool:
    api = win32()
    handle, error = api.open(pid, PROCESS_QUERY_LIMITED_INFORMATION)
    if handle is None:
        return error != ERROR_INVALID_PARAMETER  # denied: it exists
    try:
        code = api.exit_code(handle)
    finally:
        api.close(handle)
    return code is None or code == STILL_ACTIVE


def windows_poll(pid: int) -> Wait:
    return _poll(pid, windows_alive)


# ---------------------------------------------------------------- the switch


def _poll(pid: int, alive: Callable[[int], bool]) -> Wait:
    def wait() -> None:
        while alive(pid):
            time.sleep(POLL_INTERVAL_S)

    return wait


def strategies(platform: str) -> list[tuple[str, Setup]]:
    """The ways to watch a process on ``platform`` (a ``sys.platform`` value), best first."""
    if platform.startswith("linux"):
        return [("pidfd", pidfd), ("poll", posix_poll)]
    if platform == "darwin" or "bsd" in platform:
        return [("kqueue", kqueue), ("poll", posix_poll)]
    if platform in ("win32", "cygwin"):
        return [("process-handle", windows_handle), ("poll", windows_poll)]
    return [("poll", posix_poll)]


def _already_gone() -> None:
    return None


def waiter(pid: int, platform: str | None = None) -> tuple[str, Wait]:
    """The first strategy that can be set up for ``pid``, and its blocking wait."""
    chosen = strategies(platform or sys.platform)
    for name, setup in chosen:
        try:
            wait = setup(pid)
        except Gone:
            return name, _already_gone
        if wait is not None:
            return name, wait
    raise RuntimeError(f"no strategy could watch pid {pid}")  # unreachable: polling never declines


def watch_parent(pid: int, on_exit: Callable[[], None]) -> threading.Thread:
    """Call ``on_exit`` (from a daemon thread) once process ``pid`` has died."""

    def run() -> None:
        try:
            how, wait = waiter(pid)
            log.info("watching the parent process", extra={"parentPid": pid, "how": how})
            wait()
        except Exception:
            log.exception("the parent watchdog failed; polling instead")
            _poll(pid, windows_alive if sys.platform == "win32" else posix_alive)()
        log.info("the parent process is gone: shutting down", extra={"parentPid": pid})
        on_exit()

    if pid < 1:
        log.warning("--parent-pid %d is not a process id; the parent is not watched", pid)
        thread = threading.Thread(target=_already_gone, name="parent-watchdog", daemon=True)
    else:
        thread = threading.Thread(target=run, name="parent-watchdog", daemon=True)
    thread.start()
    return thread
