"""The OS file locks behind the data-dir lock and the migration lock, across processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.host.lock import DataDirBusy, acquire
from bridge.platform import locks

HOLD = """
import os, sys, time
from bridge.platform import locks
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
assert locks.try_lock(fd)
locks.write_content(fd, "held by child\\n")
print("locked", flush=True)
time.sleep(600)
"""


def hold_in_child(path: Path) -> subprocess.Popen[str]:
    child = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "locked"
    return child


def test_a_lock_held_by_another_process_is_refused_read_and_freed_when_it_dies(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    child = hold_in_child(path)
    fd = os.open(path, os.O_RDWR)
    try:
        assert locks.is_locked(fd)
        assert not locks.try_lock(fd)
        assert locks.read_content(fd) == "held by child"
        child.kill()
        child.wait()
        assert not locks.is_locked(fd)  # the OS released it with the holder: no stale lock
        assert locks.try_lock(fd)
        locks.unlock(fd)
    finally:
        os.close(fd)
        if child.poll() is None:
            child.kill()


def test_the_content_starts_after_the_lock_slot(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        assert locks.try_lock(fd)
        locks.write_content(fd, "1234\n")
        locks.write_content(fd, "56\n")  # rewritten whole, not appended
    finally:
        os.close(fd)
    raw = path.read_bytes()
    assert raw == b"\n56\n"
    assert raw[locks.CONTENT_OFFSET :] == b"56\n"  # Windows locks byte 0; the pid is readable past it
    assert path.read_text().strip() == "56"  # what `capture-bridge status` reads to find a running bridge


def test_data_dir_lock_names_the_holder_pid(tmp_path: Path) -> None:
    path = tmp_path / "bridge.lock"
    fd = acquire(path)
    try:
        assert path.read_text().strip() == str(os.getpid())
        # a second open file (as a second bridge would have) is refused and told who holds it
        with pytest.raises(DataDirBusy) as busy:
            acquire(path)
        assert busy.value.pid == str(os.getpid())
        assert f"in use by capture-bridge pid {os.getpid()}" in str(busy.value)
    finally:
        os.close(fd)
    os.close(acquire(path))  # closing the fd released it


def test_data_dir_lock_held_by_another_process(tmp_path: Path) -> None:
    path = tmp_path / "bridge.lock"
    child = hold_in_child(path)
    try:
        with pytest.raises(DataDirBusy) as busy:
            acquire(path)
        assert busy.value.pid == "held by child"
    finally:
        child.kill()
        child.wait()
    os.close(acquire(path))


def test_is_locked_uses_a_shared_probe_on_posix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Two probes (two dry runs) never see each other as holders; only an exclusive holder counts."""
    if sys.platform == "win32":
        pytest.skip("the POSIX branch of the switch")
    path = tmp_path / "x.lock"
    path.write_bytes(b"")
    import fcntl

    other = os.open(path, os.O_RDONLY)
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(other, fcntl.LOCK_SH)  # another probe in flight
        assert not locks.is_locked(fd)
    finally:
        os.close(other)
        os.close(fd)


def test_the_windows_branch_goes_through_filelock(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """With sys.platform "win32" every call goes through filelock's descriptor lock (which, run here,
    uses its own POSIX primitive): the branch is exercised end to end, not only its choice."""
    import filelock

    calls: list[str] = []
    real_lock, real_unlock = filelock.lock_descriptor, filelock.unlock_descriptor

    def lock(fd: int, *, blocking: bool = True) -> bool:
        calls.append(f"lock blocking={blocking}")
        return real_lock(fd, blocking=blocking)

    def unlock(fd: int) -> None:
        calls.append("unlock")
        real_unlock(fd)

    monkeypatch.setattr(locks.sys, "platform", "win32")
    monkeypatch.setattr(filelock, "lock_descriptor", lock)
    monkeypatch.setattr(filelock, "unlock_descriptor", unlock)
    path = tmp_path / "x.lock"
    child = hold_in_child(path)
    fd = os.open(path, os.O_RDWR)
    try:
        assert locks.is_locked(fd) is True
        assert locks.try_lock(fd) is False
        child.kill()
        child.wait()
        assert locks.is_locked(fd) is False  # taken and given back at once
        assert locks.try_lock(fd) is True
        locks.unlock(fd)
    finally:
        os.close(fd)
        if child.poll() is None:
            child.kill()
    assert calls == ["lock blocking=False"] * 3 + ["unlock"] + ["lock blocking=False", "unlock"]


def test_posix_start_up_does_not_import_filelock() -> None:
    code = (
        "import os, sys, tempfile\n"
        "from bridge.host.lock import acquire\n"
        "os.close(acquire(__import__('pathlib').Path(tempfile.mkdtemp()) / 'bridge.lock'))\n"
        "print('filelock' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == ("True" if sys.platform == "win32" else "False"), out.stderr


def test_modules_import_without_fcntl(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing on the serve and migrate paths needs fcntl at import time (it does not exist on Windows)."""
    code = (
        "import sys; sys.modules['fcntl'] = None; sys.platform = 'win32'\n"
        "import bridge.host.lock, bridge.collector.lock, bridge.platform.watchdog, bridge.platform.pipes\n"
        "import bridge.host.transport, bridge.sidecar.process\n"
        "assert bridge.platform.pipes.enlarge_pipe(1) is None\n"
        "print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "ok", out.stderr
