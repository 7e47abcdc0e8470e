"""The frozen build, made once per session (reused while the sources are unchanged)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dist.support import REPO, Frozen, entry_processes, load_frozen


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
def clean_tmp(tmp_path: Path) -> Path:
    """A TMPDIR for the frozen process: it must be empty again once the process has exited."""
    path = tmp_path / "tmpdir"
    path.mkdir()
    return path
