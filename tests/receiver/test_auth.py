"""The key file: created once with 0600, reused, repaired; compared in constant time."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from bridge.receiver.auth import key_matches, load_or_create_key, read_key


def test_key_is_created_0600_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "otlp.key"
    key = load_or_create_key(path)
    assert len(key) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key(path) == key == read_key(path)


def test_loose_permissions_are_tightened_and_garbage_replaced(tmp_path: Path) -> None:
    path = tmp_path / "otlp.key"
    key = load_or_create_key(path)
    os.chmod(path, 0o644)
    assert load_or_create_key(path) == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.write_text("short\n")
    replaced = load_or_create_key(path)
    assert replaced != key and read_key(path) == replaced


def test_key_matching() -> None:
    assert key_matches(b"abc", "abc")
    assert key_matches(b" abc ", "abc")
    assert not key_matches(b"abd", "abc")
    assert not key_matches(b"", "abc")
    assert not key_matches(None, "abc")
