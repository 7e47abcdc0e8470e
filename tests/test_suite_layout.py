"""The suite runs every test the repository holds: no test folder is skipped by pytest's collection."""

from __future__ import annotations

from fnmatch import fnmatch
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent


def test_pytest_walks_every_folder_that_holds_tests(pytestconfig: pytest.Config) -> None:
    # pytest skips a folder whose name matches norecursedirs (its default list has "dist", which once
    # left the frozen build's tests out of `make test` unnoticed).
    patterns = pytestconfig.getini("norecursedirs")
    folders = {path.parent for path in TESTS.rglob("test_*.py")}
    skipped = sorted(
        str(folder.relative_to(TESTS))
        for folder in folders
        for part in folder.relative_to(TESTS).parts
        if any(fnmatch(part, pattern) for pattern in patterns)
    )
    assert (TESTS / "dist") in folders
    assert skipped == []
