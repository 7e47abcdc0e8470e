"""The parent watchdog: which strategy each platform gets, each strategy against its OS calls
(real ones on Linux, recorded fakes for macOS and Windows), and the fallbacks."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest

from bridge.platform import watchdog

DEADLINE = 6.0  # the bridge promises 2 s; asserted with 3x slack


def sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])


@pytest.mark.parametrize(
    ("platform", "names"),
    [
        ("linux", ["pidfd", "poll"]),
        ("darwin", ["kqueue", "poll"]),
        ("freebsd14", ["kqueue", "poll"]),
        ("win32", ["process-handle", "poll"]),
        ("sunos5", ["poll"]),
    ],
)
def test_each_platform_gets_its_strategies_best_first(platform: str, names: list[str]) -> None:
    assert [name for name, _ in watchdog.strategies(platform)] == names


def test_windows_never_polls_with_os_kill() -> None:
    """os.kill(pid, 0) on Windows would terminate the parent, so its poll asks for the exit code."""
    [(_, _), (_, poll)] = watchdog.strategies("win32")
    assert poll is watchdog.windows_poll


# ---------------------------------------------------------------- real, on this machine


def watch_and_kill(setup_name: str) -> float:
    proc = sleeper()
    fired = threading.Event()
    try:
        strategies = dict(watchdog.strategies(sys.platform))
        wait = strategies[setup_name](proc.pid)
        assert wait is not None
        thread = threading.Thread(target=lambda: (wait(), fired.set()), daemon=True)
        thread.start()
        time.sleep(0.3)
        assert not fired.is_set(), "the watch must block while the process lives"
        proc.kill()
        proc.wait()
        started = time.monotonic()
        assert fired.wait(DEADLINE)
        return time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="needs Linux 5.3+ and Python's os.pidfd_open")
def test_pidfd_sees_the_exit_of_a_real_process() -> None:
    watch_and_kill("pidfd")


@pytest.mark.skipif(sys.platform == "win32", reason="the POSIX poll")
def test_polling_sees_the_exit_of_a_real_process() -> None:
    watch_and_kill("poll")


def test_watch_parent_calls_back_once_the_process_is_gone() -> None:
    proc = sleeper()
    fired = threading.Event()
    try:
        watchdog.watch_parent(proc.pid, fired.set)
        time.sleep(0.3)
        assert not fired.is_set()
        proc.kill()
        proc.wait()
        assert fired.wait(DEADLINE)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_parent_already_gone_ends_the_watch_at_once() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    how, wait = watchdog.waiter(proc.pid)
    assert how == watchdog.strategies(sys.platform)[0][0]
    wait()  # returns immediately
    fired = threading.Event()
    watchdog.watch_parent(proc.pid, fired.set)
    assert fired.wait(DEADLINE)


def test_a_pid_that_is_no_process_id_is_not_watched() -> None:
    fired = threading.Event()
    watchdog.watch_parent(0, fired.set).join(5)
    assert not fired.is_set()  # neither "watched forever" via kill(0, 0) nor a false exit


def test_pidfd_refused_by_the_kernel_falls_back_to_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(pid: int) -> int:
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(watchdog.os, "pidfd_open", refused, raising=False)
    assert watchdog.pidfd(os.getpid()) is None
    how, _ = watchdog.waiter(os.getpid(), "linux")
    assert how == "poll"


def test_a_python_without_pidfd_open_falls_back_to_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(watchdog.os, "pidfd_open", raising=False)
    assert watchdog.waiter(os.getpid(), "linux")[0] == "poll"


# ---------------------------------------------------------------- macOS: kqueue, against a fake


class FakeQueue:
    def __init__(self, register_error: BaseException | None = None) -> None:
        self.register_error = register_error
        self.registered: list[Any] = []
        self.waits = 0
        self.closed = False

    def control(self, changes: Any, max_events: int, timeout: Any = None) -> list[Any]:
        if changes:
            if self.register_error is not None:
                raise self.register_error
            self.registered.extend(changes)
            return []
        self.waits += 1
        return [] if self.waits < 2 else ["exit"]  # one spurious wake-up, then the exit

    def close(self) -> None:
        self.closed = True


def fake_select(queue: FakeQueue) -> SimpleNamespace:
    return SimpleNamespace(
        kqueue=lambda: queue,
        kevent=lambda ident, **kw: SimpleNamespace(ident=ident, **kw),
        KQ_FILTER_PROC=-5, KQ_EV_ADD=0x1, KQ_EV_ONESHOT=0x10, KQ_NOTE_EXIT=0x80000000,
    )  # fmt: skip


def test_kqueue_registers_a_one_shot_exit_filter_on_the_pid(monkeypatch: pytest.MonkeyPatch) -> None:
    queue = FakeQueue()
    monkeypatch.setattr(watchdog, "select", fake_select(queue))
    wait = watchdog.kqueue(4242)
    assert wait is not None
    [event] = queue.registered
    assert (event.ident, event.filter, event.flags, event.fflags) == (4242, -5, 0x11, 0x80000000)
    wait()
    assert queue.waits == 2 and queue.closed


def test_kqueue_on_a_dead_pid_is_gone_and_on_a_refusal_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    gone = FakeQueue(ProcessLookupError(errno.ESRCH, "No such process"))
    monkeypatch.setattr(watchdog, "select", fake_select(gone))
    with pytest.raises(watchdog.Gone):
        watchdog.kqueue(4242)
    assert gone.closed
    denied = FakeQueue(PermissionError(errno.EPERM, "Operation not permitted"))
    monkeypatch.setattr(watchdog, "select", fake_select(denied))
    assert watchdog.waiter(4242, "darwin")[0] == "poll"


def test_without_kqueue_macos_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watchdog, "select", SimpleNamespace())
    assert watchdog.waiter(os.getpid(), "darwin")[0] == "poll"


# ---------------------------------------------------------------- Windows: a process handle, against a fake


class FakeWin32:
    def __init__(self, processes: dict[int, int], denied: frozenset[int] = frozenset()) -> None:
        self.processes = processes  # pid -> exit code (259: still active)
        self.denied = denied
        self.calls: list[tuple[Any, ...]] = []
        self.open_handles: set[int] = set()

    def open(self, pid: int, access: int) -> tuple[Any, int]:
        self.calls.append(("open", pid, access))
        if pid not in self.processes:
            return None, watchdog.ERROR_INVALID_PARAMETER
        if pid in self.denied and access == watchdog.SYNCHRONIZE:
            return None, 5  # ERROR_ACCESS_DENIED
        self.open_handles.add(pid)
        return pid, 0

    def wait(self, handle: Any) -> None:
        self.calls.append(("wait", handle))

    def exit_code(self, handle: Any) -> int | None:
        return self.processes[handle]

    def close(self, handle: Any) -> None:
        self.calls.append(("close", handle))
        self.open_handles.discard(handle)


def test_windows_waits_on_a_synchronize_handle_and_closes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    api = FakeWin32({4242: watchdog.STILL_ACTIVE})
    monkeypatch.setattr(watchdog, "win32", lambda: api)
    how, wait = watchdog.waiter(4242, "win32")
    assert how == "process-handle"
    wait()
    assert api.calls == [("open", 4242, watchdog.SYNCHRONIZE), ("wait", 4242), ("close", 4242)]
    assert not api.open_handles


def test_windows_dead_pid_is_gone_and_denied_handle_falls_back_to_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    api = FakeWin32({4242: watchdog.STILL_ACTIVE}, denied=frozenset({4242}))
    monkeypatch.setattr(watchdog, "win32", lambda: api)
    with pytest.raises(watchdog.Gone):
        watchdog.windows_handle(999)
    assert watchdog.waiter(4242, "win32")[0] == "poll"


def test_windows_poll_reads_the_exit_code(monkeypatch: pytest.MonkeyPatch) -> None:
    api = FakeWin32({1: watchdog.STILL_ACTIVE, 2: 0}, denied=frozenset({3}))
    api.processes[3] = watchdog.STILL_ACTIVE
    monkeypatch.setattr(watchdog, "win32", lambda: api)
    assert watchdog.windows_alive(1) is True
    assert watchdog.windows_alive(2) is False  # exited with 0, handle still open somewhere
    assert watchdog.windows_alive(3) is True  # query allowed, still active
    assert watchdog.windows_alive(99) is False  # no such process
    assert not api.open_handles
    monkeypatch.setattr(watchdog, "POLL_INTERVAL_S", 0.01)
    ticks = iter([watchdog.STILL_ACTIVE, watchdog.STILL_ACTIVE, 0])
    monkeypatch.setattr(api, "exit_code", lambda handle: next(ticks))
    watchdog.windows_poll(1)()  # returns once the exit code is no longer STILL_ACTIVE


@pytest.mark.skipif(sys.platform == "win32", reason="ctypes.WinDLL exists there")
def test_the_real_win32_binding_is_only_built_on_windows() -> None:
    with pytest.raises(AttributeError):
        watchdog.Win32()
