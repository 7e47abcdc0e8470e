"""The pure migration planner: a home snapshot in, problems and ordered actions out.

Merge rule (a path present in several roots): roots are layered in the order
``~/.codex/otel-collector``, ``~/.agents/otel-collector``, then the existing
canonical ``~/.agents/otel/collector``; a later layer wins. So content already
in the canonical root is never replaced, and the newer legacy root beats the
older one. Directories merge. Identical versions (same bytes, or the same link
text) are no conflict; differing ones are reported as a conflict and the losing
version is kept where it was (legacy roots are never touched) and in the
backup. A path that is a directory in one root and not in another is a problem
the planner refuses to guess about.

No I/O here: string path arithmetic only, so the rules are tested as tables.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from enum import StrEnum

from bridge.collector.snapshot import Entry, HomeSnapshot, Kind, RootSnapshot


@dataclass(frozen=True, slots=True)
class Problem:
    code: str
    path: str
    message: str


@dataclass(frozen=True, slots=True)
class Placed:
    """One entry of the new canonical tree and the root it is copied from."""

    root: str
    entry: Entry

    @property
    def source(self) -> str:
        return posixpath.join(self.root, self.entry.rel)


@dataclass(frozen=True, slots=True)
class Conflict:
    rel: str
    winner: str
    losers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LegacyBackup:
    root: RootSnapshot
    dest: str


@dataclass(frozen=True, slots=True)
class MigrationPlan:
    problems: tuple[Problem, ...]
    tree: tuple[Placed, ...]  # parents before children
    root_mode: int
    backups: tuple[LegacyBackup, ...]
    canonical: str
    canonical_exists: bool
    canonical_aside: str  # where the current canonical tree goes (inside the backup dir)
    backup_dir: str
    staging_dir: str
    changes_canonical: bool
    conflicts: tuple[Conflict, ...]
    actions: tuple[str, ...]


class Decision(StrEnum):
    NOTHING_LEGACY = "nothing_legacy"  # no legacy root: nothing to migrate
    UP_TO_DATE = "up_to_date"  # migrated before and the canonical tree already holds it all
    MIGRATE = "migrate"


def _sort_key(rel: str) -> tuple[str, ...]:
    return tuple(rel.split("/"))


def _inside(path: str, base: str) -> bool:
    return path == base or path.startswith(base.rstrip("/") + "/")


def _content(entry: Entry) -> tuple[str, str | None]:
    return (entry.kind.value, entry.digest if entry.kind is Kind.FILE else entry.target)


_KIND_WORDS = {Kind.FILE: "a file", Kind.SYMLINK: "a symlink", Kind.OTHER: "a special file", Kind.DIR: "a directory"}


def root_problems(root: RootSnapshot, home_real: str, *, canonical: bool) -> list[Problem]:
    """Why ``root`` cannot be migrated safely (empty when it can)."""
    out: list[Problem] = []
    for path, kind in root.ancestors:
        if kind is Kind.SYMLINK and (canonical or root.exists):
            out.append(
                Problem(
                    "symlinked_root",
                    path,
                    f"{path} is a symlink; the migration works only on real directories inside the home. "
                    "Replace the link with the directory it points to, then run the migration again.",
                )
            )
        elif kind in (Kind.FILE, Kind.OTHER) and canonical:
            out.append(
                Problem(
                    "not_a_directory",
                    path,
                    f"{path} is {_KIND_WORDS[kind]} where a directory is expected; "
                    "move it away, then run the migration again.",
                )
            )
    if out:
        return out
    if root.kind is Kind.SYMLINK:
        out.append(
            Problem(
                "symlinked_root",
                root.path,
                f"{root.path} is a symlink; the migration works only on real directories inside the home. "
                "Replace the link with the directory it points to, then run the migration again.",
            )
        )
    elif root.kind in (Kind.FILE, Kind.OTHER):
        out.append(
            Problem(
                "not_a_directory",
                root.path,
                f"{root.path} is {_KIND_WORDS[root.kind]} where a directory is expected; "
                "move it away, then run the migration again.",
            )
        )
    if root.error is not None:
        out.append(
            Problem(
                "unreadable",
                root.path,
                f"{root.path} cannot be read ({root.error}); fix its permissions, then run the migration again.",
            )
        )
    for e in root.entries:
        path = posixpath.join(root.path, e.rel)
        if e.error is not None:
            out.append(
                Problem(
                    "unreadable",
                    path,
                    f"{path} cannot be read ({e.error}); fix its permissions, then run the migration again.",
                )
            )
        elif e.kind is Kind.OTHER:
            out.append(
                Problem(
                    "unsupported_file",
                    path,
                    f"{path} is a special file (fifo, socket or device); the migration copies only files, "
                    "directories and symlinks. Remove it, then run the migration again.",
                )
            )
        elif e.kind is Kind.SYMLINK:
            target = e.target or ""
            if e.resolved is None or not _inside(e.resolved, home_real):
                out.append(
                    Problem(
                        "symlink_outside_home",
                        path,
                        f"{path} is a symlink to {target}, outside the home; the migration never follows links "
                        "out of the home. Replace it with a copy of what it points to, then run the migration again.",
                    )
                )
            elif not posixpath.isabs(target):
                landed = posixpath.normpath(posixpath.join(posixpath.dirname(e.rel), target))
                if landed == ".." or landed.startswith("../"):
                    out.append(
                        Problem(
                            "symlink_escapes_root",
                            path,
                            f"{path} is a relative symlink to {target}, which leaves its collector root and would "
                            "point elsewhere once moved. Make it absolute, then run the migration again.",
                        )
                    )
    return out


def _label(index: int, home: str, root: str) -> str:
    rel = posixpath.relpath(root, home)
    return f"{index + 1}-" + rel.replace("/", "-").lstrip(".")


def plan_migration(snap: HomeSnapshot, backup_dir: str, staging_dir: str) -> MigrationPlan:
    """What a real run would do to build the merged canonical tree."""
    problems: list[Problem] = []
    for root in snap.legacy:
        problems += root_problems(root, snap.home_real, canonical=False)
    problems += root_problems(snap.canonical, snap.home_real, canonical=True)

    layers = [r for r in (*snap.legacy, snap.canonical) if r.kind is Kind.DIR]
    versions: dict[str, list[Placed]] = {}
    for layer in layers:
        for e in layer.entries:
            versions.setdefault(e.rel, []).append(Placed(layer.path, e))

    tree: list[Placed] = []
    conflicts: list[Conflict] = []
    for rel in sorted(versions, key=_sort_key):
        vs = versions[rel]
        dirs = [v for v in vs if v.entry.kind is Kind.DIR]
        if dirs and len(dirs) != len(vs):
            other = next(v for v in vs if v.entry.kind is not Kind.DIR)
            problems.append(
                Problem(
                    "kind_conflict",
                    rel,
                    f"{rel} is a directory in {dirs[0].root} but {_KIND_WORDS[other.entry.kind]} in {other.root}; "
                    "make them agree by hand, then run the migration again.",
                )
            )
            continue
        winner = vs[-1]
        losers = tuple(dict.fromkeys(v.source for v in vs[:-1] if _content(v.entry) != _content(winner.entry)))
        if losers and winner.entry.kind is not Kind.DIR:
            conflicts.append(Conflict(rel, winner.source, losers))
        tree.append(winner)

    # Children of a path dropped by a kind conflict go too (the plan is refused anyway).
    kept = {p.entry.rel for p in tree}
    tree = [p for p in tree if all(a in kept for a in _parents(p.entry.rel))]
    root_mode = layers[-1].mode if layers else 0o700

    canonical = snap.canonical.path
    canonical_exists = snap.canonical.exists
    backups = tuple(
        LegacyBackup(r, posixpath.join(backup_dir, "legacy", _label(i, snap.home, r.path)))
        for i, r in enumerate(snap.legacy)
        if r.exists
    )
    aside = posixpath.join(backup_dir, "canonical", posixpath.basename(canonical))

    if snap.canonical.kind is Kind.DIR:
        before = {e.rel: (e.kind, e.mode, _content(e)) for e in snap.canonical.entries}
        after = {p.entry.rel: (p.entry.kind, p.entry.mode, _content(p.entry)) for p in tree}
        changes = before != after or snap.canonical.mode != root_mode
    else:
        changes = bool(layers)

    actions = _actions(tree, conflicts, backups, canonical, canonical_exists, aside, backup_dir, staging_dir)
    return MigrationPlan(
        problems=tuple(problems),
        tree=tuple(tree),
        root_mode=root_mode,
        backups=backups,
        canonical=canonical,
        canonical_exists=canonical_exists,
        canonical_aside=aside,
        backup_dir=backup_dir,
        staging_dir=staging_dir,
        changes_canonical=changes,
        conflicts=tuple(conflicts),
        actions=tuple(actions),
    )


def _parents(rel: str) -> list[str]:
    parts = rel.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def _actions(
    tree: list[Placed],
    conflicts: list[Conflict],
    backups: tuple[LegacyBackup, ...],
    canonical: str,
    canonical_exists: bool,
    aside: str,
    backup_dir: str,
    staging_dir: str,
) -> list[str]:
    out = [f"create backup directory {backup_dir}"]
    for b in backups:
        n = len(b.root.entries)
        out.append(f"back up {b.root.path} to {b.dest} ({n} {'entry' if n == 1 else 'entries'})")
    out.append(f"create staging directory {staging_dir}")
    by_rel = {c.rel: c for c in conflicts}
    for p in tree:
        dest = posixpath.join(canonical, p.entry.rel)
        if p.entry.kind is Kind.DIR:
            out.append(f"create directory {dest}")
        elif p.entry.kind is Kind.SYMLINK:
            out.append(f"link {dest} -> {p.entry.target}")
        else:
            out.append(f"copy {p.source} to {dest}")
        c = by_rel.get(p.entry.rel)
        if c is not None:
            out.append(
                f"conflict on {p.entry.rel}: keep {c.winner}, not {', '.join(c.losers)} "
                "(contents differ; the other version stays where it is and in the backup)"
            )
    if canonical_exists:
        out.append(f"swap the staged tree in as {canonical} atomically, moving the current tree to {aside}")
    else:
        out.append(f"rename the staged tree to {canonical} (atomic)")
    out.append("record status migrated (the legacy roots are left as they were)")
    return out


def decide_run(snap: HomeSnapshot, plan: MigrationPlan, last_outcome: str | None) -> Decision:
    """Whether a real run has work to do.

    Nothing legacy: nothing to migrate. Migrated before and the merged tree is
    already the canonical tree: up to date (re-running is a no-op). Otherwise
    the run migrates, even when the tree would not change, so that the result
    is recorded (with its backup) and can be rolled back.
    """
    if not snap.legacy_exists:
        return Decision.NOTHING_LEGACY
    if last_outcome == "migrated" and not plan.changes_canonical and not plan.problems:
        return Decision.UP_TO_DATE
    return Decision.MIGRATE


def noop_action(decision: Decision, canonical: str) -> str:
    if decision is Decision.NOTHING_LEGACY:
        return "nothing to do: no legacy collector root exists"
    return f"nothing to do: {canonical} already holds everything from the legacy roots"


def rollback_actions(
    canonical: str, canonical_exists: bool, restore_from: str | None, replaced: str, staging_dir: str
) -> tuple[str, ...]:
    """What a rollback does; ``restore_from`` is None when the canonical root did not exist before."""
    out: list[str] = []
    if restore_from is not None:
        out.append(f"copy the pre-migration tree from {restore_from} to staging directory {staging_dir}")
        if canonical_exists:
            out.append(f"swap it in as {canonical} atomically, moving the current tree to {replaced}")
        else:
            out.append(f"rename it to {canonical} (atomic)")
    elif canonical_exists:
        out.append(f"move {canonical} to {replaced} (it did not exist before the migration)")
    out.append("record status deferred")
    return tuple(out)
