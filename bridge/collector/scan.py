"""Reading the collector roots into snapshots. Reads only: never creates, never follows a link."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from bridge.collector import fsops
from bridge.collector.roots import Roots
from bridge.collector.snapshot import Entry, HomeSnapshot, Kind, RootSnapshot


def kind_of(mode: int) -> Kind:
    if stat.S_ISLNK(mode):
        return Kind.SYMLINK
    if stat.S_ISDIR(mode):
        return Kind.DIR
    if stat.S_ISREG(mode):
        return Kind.FILE
    return Kind.OTHER


def lstat_kind(path: str | Path) -> tuple[Kind, int]:
    """Kind and permission bits of a path, ``ABSENT`` when it (or a parent) is missing."""
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return Kind.ABSENT, 0
    return kind_of(st.st_mode), stat.S_IMODE(st.st_mode)


def _error(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _walk(root: str) -> tuple[list[Entry], str | None]:
    """Every entry below ``root``, depth first in name order; an unlistable root is an error."""
    out: list[Entry] = []

    def visit(directory: str, prefix: str) -> str | None:
        try:
            with os.scandir(directory) as it:
                names = sorted(de.name for de in it)
        except OSError as exc:
            return _error(exc)
        for name in names:
            path = os.path.join(directory, name)
            rel = prefix + name
            try:
                st = os.lstat(path)
            except OSError as exc:
                out.append(Entry(rel, Kind.OTHER, error=_error(exc)))
                continue
            kind = kind_of(st.st_mode)
            mode = stat.S_IMODE(st.st_mode)
            if kind is Kind.FILE:
                try:
                    digest: str | None = fsops.file_digest(path)
                    err = None
                except OSError as exc:
                    digest, err = None, _error(exc)
                out.append(Entry(rel, kind, mode, st.st_size, digest=digest, error=err))
            elif kind is Kind.SYMLINK:
                target = os.readlink(path)
                out.append(Entry(rel, kind, mode, target=target, resolved=os.path.realpath(path)))
            elif kind is Kind.DIR:
                index = len(out)
                out.append(Entry(rel, kind, mode))
                problem = visit(path, rel + "/")
                if problem is not None:
                    out[index] = Entry(rel, kind, mode, error=problem)
            else:
                out.append(Entry(rel, kind, mode))
        return None

    return out, visit(root, "")


def scan_root(home: Path, root: Path) -> RootSnapshot:
    ancestors: list[tuple[str, Kind]] = []
    current = home
    for part in root.relative_to(home).parts[:-1]:
        current = current / part
        ancestors.append((str(current), lstat_kind(current)[0]))
    kind, mode = lstat_kind(root)
    if kind is not Kind.DIR or any(k is not Kind.DIR for _, k in ancestors):
        return RootSnapshot(str(root), kind, mode, tuple(ancestors))
    entries, error = _walk(str(root))
    return RootSnapshot(str(root), kind, mode, tuple(ancestors), tuple(entries), error)


def scan_home(roots: Roots) -> HomeSnapshot:
    return HomeSnapshot(
        home=str(roots.home),
        home_real=os.path.realpath(roots.home),
        legacy=tuple(scan_root(roots.home, r) for r in roots.legacy),
        canonical=scan_root(roots.home, roots.canonical),
    )


def scan_tree(path: Path) -> RootSnapshot:
    """A tree of the migration's own (a backup): no ancestor checks."""
    kind, mode = lstat_kind(path)
    if kind is not Kind.DIR:
        return RootSnapshot(str(path), kind, mode)
    entries, error = _walk(str(path))
    return RootSnapshot(str(path), kind, mode, (), tuple(entries), error)
