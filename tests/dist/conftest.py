"""The frozen build, made once per session (reused while the sources are unchanged)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dist.support import REPO, Frozen, entry_processes, load_frozen, processes_with_env


@pytest.fixture(scope="session")
def frozen() -> Frozen:
    """``make dist``'s folder for the current sources (built here when missing or stale)."""
    try:
        import PyInstaller  # noqa: F401
    except ImportError:
        pytest.fail("PyInstaller is not installed: run `make dist-tools` (make test does)")
    subprocess.run(
        [sys.executable, str(REPO / "packaging" / "build.py"), "--if-changed", "--quiet"],
        check=True, cwd=REPO, timeout=900,
    )  # fmt: skip
    return load_frozen()


@pytest.fixture(autouse=True)
def no_frozen_process_left(frozen: Frozen) -> Iterator[None]:
    """Every test ends with no process of the frozen entry still running."""
    before = entry_processes(frozen.entry)
    yield
    left = entry_processes(frozen.entry) - before
    assert not left, f"frozen bridge processes left running: {sorted(left)}"


@pytest.fixture
def clean_tmp(tmp_path: Path) -> Iterator[Path]:
    """A TMPDIR for the frozen process: it must be empty again once the process has exited.

    Every process the frozen bridge starts (codex, replay's player) inherits it, so it also
    finds what is left running at the end of the test.
    """
    path = tmp_path / "tmpdir"
    path.mkdir()
    yield path
    deadline = time.monotonic() + 5  # children exit just after their parent: give them a moment
    while (left := processes_with_env("TMPDIR", str(path))) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, f"processes started by the frozen bridge are still running: {sorted(left)}"
