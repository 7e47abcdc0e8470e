"""What the scanner saw: plain, immutable facts the pure planner decides on."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    ABSENT = "absent"
    DIR = "dir"
    FILE = "file"
    SYMLINK = "symlink"
    OTHER = "other"  # fifo, socket, device: never copied


@dataclass(frozen=True, slots=True)
class Entry:
    """One path below a root (``rel`` is POSIX-style, relative to the root)."""

    rel: str
    kind: Kind
    mode: int = 0  # permission bits only
    size: int = 0
    digest: str | None = None  # sha256 of a file's bytes
    target: str | None = None  # a symlink's text, verbatim
    resolved: str | None = None  # realpath of a symlink
    error: str | None = None  # why it could not be read (strerror), if it could not


@dataclass(frozen=True, slots=True)
class RootSnapshot:
    """A collector root and the path leading to it from the home."""

    path: str
    kind: Kind  # of the root path itself (lstat: a symlinked root is SYMLINK)
    mode: int = 0
    # (path, kind) of each directory between the home and the root, outermost first.
    ancestors: tuple[tuple[str, Kind], ...] = ()
    entries: tuple[Entry, ...] = ()  # sorted by rel, parents before children
    error: str | None = None  # listing the root itself failed

    @property
    def exists(self) -> bool:
        return self.kind is not Kind.ABSENT


@dataclass(frozen=True, slots=True)
class HomeSnapshot:
    home: str
    home_real: str  # realpath of the home: symlink targets are judged against it
    legacy: tuple[RootSnapshot, ...]
    canonical: RootSnapshot

    @property
    def legacy_exists(self) -> bool:
        return any(r.exists for r in self.legacy)
