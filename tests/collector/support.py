"""Temp-home builders and whole-tree digests for the collector migration tests."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bridge.collector.roots import Roots
from bridge.collector.service import CollectorMigrationService

CODEX = ".codex/otel-collector"
AGENTS = ".agents/otel-collector"
CANONICAL = ".agents/otel/collector"
BOOKKEEPING = ".agents/otel/.collector-"
REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Link:
    target: str


Spec = Mapping[str, "bytes | Link | None"]  # None: an empty directory


def build(root: Path, spec: Spec, mode: int | None = None) -> Path:
    """Create ``root`` with files (bytes), symlinks (Link) and empty dirs (None)."""
    root.mkdir(parents=True, exist_ok=True)
    for rel, value in spec.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if value is None:
            path.mkdir(exist_ok=True)
        elif isinstance(value, Link):
            path.symlink_to(value.target)
        else:
            path.write_bytes(value)
    if mode is not None:
        root.chmod(mode)
    return root


Digest = dict[str, tuple[str, int, str]]


def tree(root: Path, ignore: Callable[[str], bool] = lambda rel: False) -> Digest:
    """Every path below ``root``: kind, mode and sha256 of bytes or the link text (not followed)."""
    out: Digest = {}
    if not os.path.lexists(root):
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            if ignore(rel):
                continue
            st = os.lstat(path)
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", 0, os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", mode, "")
            elif stat.S_ISREG(st.st_mode):
                with open(path, "rb") as fh:
                    out[rel] = ("file", mode, hashlib.sha256(fh.read()).hexdigest())
            else:
                out[rel] = ("other", mode, "")
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
    return out


def home_hash(home: Path, ignore: Callable[[str], bool] = lambda rel: False) -> str:
    digest = tree(home, ignore)
    return hashlib.sha256(repr(sorted(digest.items())).encode()).hexdigest()


def not_bookkeeping(rel: str) -> bool:
    """Ignore the migration's own files (state, lock, backups) and the dirs made to hold them."""
    return rel.startswith(BOOKKEEPING) or rel in (".agents", ".agents/otel")


def service(home: Path, **kw: object) -> CollectorMigrationService:
    return CollectorMigrationService(Roots(home), **kw)  # type: ignore[arg-type]


class Clock:
    """A fixed, advanceable clock so backup names are predictable."""

    def __init__(self) -> None:
        self.now = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def leftovers(home: Path) -> list[str]:
    """Staging dirs left in ``~/.agents/otel`` (there must never be any after a run ends)."""
    otel = home / ".agents/otel"
    return sorted(p.name for p in otel.glob(".collector-staging-*")) if otel.exists() else []


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m bridge migrate ARGS`` with ``$HOME`` set to ``home``."""
    return subprocess.run(
        [sys.executable, "-m", "bridge", "migrate", *args],
        capture_output=True,
        text=True,
        env=dict(os.environ, HOME=str(home)),
        cwd=REPO,
        timeout=60,
    )
