"""The pure planner and status decisions, as tables (no filesystem)."""

from __future__ import annotations

import pytest

from bridge.collector.plan import Decision, decide_run, plan_migration, rollback_actions
from bridge.collector.snapshot import Entry, HomeSnapshot, Kind, RootSnapshot
from bridge.collector.state import Journal, MigrationState
from bridge.collector.status import Status, decide_status

H = "/h"
CODEX = f"{H}/.codex/otel-collector"
AGENTS = f"{H}/.agents/otel-collector"
CANON = f"{H}/.agents/otel/collector"
BACKUP = f"{H}/.agents/otel/.collector-backups/T-migrate"
STAGING = f"{H}/.agents/otel/.collector-staging-T"


def F(rel: str, content: str = "x", mode: int = 0o644) -> Entry:
    return Entry(rel, Kind.FILE, mode, len(content), digest=f"sha-{content}")


def D(rel: str, mode: int = 0o755) -> Entry:
    return Entry(rel, Kind.DIR, mode)


def L(rel: str, target: str, resolved: str) -> Entry:
    return Entry(rel, Kind.SYMLINK, 0o777, target=target, resolved=resolved)


def root(path: str, *entries: Entry, kind: Kind = Kind.DIR, ancestors: tuple[tuple[str, Kind], ...] | None = None,
         error: str | None = None) -> RootSnapshot:  # fmt: skip
    if ancestors is None:
        parts = path[len(H) + 1 :].split("/")[:-1]
        ancestors = tuple((H + "/" + "/".join(parts[: i + 1]), Kind.DIR) for i in range(len(parts)))
    return RootSnapshot(path, kind, 0o755 if kind is Kind.DIR else 0, ancestors, entries, error)


def absent(path: str) -> RootSnapshot:
    return root(path, kind=Kind.ABSENT)


def home(codex: RootSnapshot | None = None, agents: RootSnapshot | None = None,
         canon: RootSnapshot | None = None) -> HomeSnapshot:  # fmt: skip
    return HomeSnapshot(H, H, (codex or absent(CODEX), agents or absent(AGENTS)), canon or absent(CANON))


# --- merge rule ------------------------------------------------------------------------------

MERGE_CASES = [
    pytest.param(home(root(CODEX, F("a"))), {"a": CODEX}, [], id="codex-only"),
    pytest.param(home(agents=root(AGENTS, F("a"))), {"a": AGENTS}, [], id="agents-only"),
    pytest.param(home(root(CODEX, F("a", "1")), root(AGENTS, F("a", "2"))), {"a": AGENTS}, [("a", [CODEX])],
                 id="newer-legacy-wins"),
    pytest.param(home(root(CODEX, F("a", "1")), root(AGENTS, F("a", "1"))), {"a": AGENTS}, [],
                 id="identical-no-conflict"),
    pytest.param(home(root(CODEX, F("a", "1")), canon=root(CANON, F("a", "9"))), {"a": CANON}, [("a", [CODEX])],
                 id="canonical-wins"),
    pytest.param(home(root(CODEX, F("a", "1")), root(AGENTS, F("a", "2")), root(CANON, F("a", "1"))), {"a": CANON},
                 [("a", [AGENTS])], id="canonical-equal-to-oldest"),
    pytest.param(home(root(CODEX, F("a", "1")), root(AGENTS, F("a", "2")), root(CANON, F("a", "3"))), {"a": CANON},
                 [("a", [CODEX, AGENTS])], id="three-way"),
    pytest.param(home(root(CODEX, D("d"), F("d/x")), root(AGENTS, D("d"), F("d/y")), root(CANON, F("z"))),
                 {"d": AGENTS, "d/x": CODEX, "d/y": AGENTS, "z": CANON}, [], id="dirs-merge"),
    pytest.param(home(root(CODEX, L("l", "a", f"{CODEX}/a"), F("a")), root(AGENTS, L("l", "b", f"{AGENTS}/b"))),
                 {"a": CODEX, "l": AGENTS}, [("l", [CODEX])], id="links-differ"),
    pytest.param(home(root(CODEX, L("l", "a", f"{CODEX}/a")), root(AGENTS, L("l", "a", f"{AGENTS}/a"))),
                 {"l": AGENTS}, [], id="links-same-text"),
    pytest.param(home(root(CODEX, F("a", "1")), root(AGENTS, L("a", "b", f"{AGENTS}/b"))), {"a": AGENTS},
                 [("a", [CODEX])], id="file-vs-link"),
]  # fmt: skip


@pytest.mark.parametrize(("snap", "expected", "conflicts"), MERGE_CASES)
def test_merge_rule(snap: HomeSnapshot, expected: dict[str, str], conflicts: list[tuple[str, list[str]]]) -> None:
    plan = plan_migration(snap, BACKUP, STAGING)
    assert not plan.problems
    assert {p.entry.rel: p.root for p in plan.tree} == expected
    assert [(c.rel, [x.rsplit("/", 1)[0] for x in c.losers]) for c in plan.conflicts] == conflicts
    # parents before children
    rels = [p.entry.rel for p in plan.tree]
    for i, rel in enumerate(rels):
        if "/" in rel:
            assert rel.rsplit("/", 1)[0] in rels[:i]


def test_mode_of_the_winner_is_kept() -> None:
    plan = plan_migration(home(root(CODEX, F("a", "1", 0o600)), root(AGENTS, F("a", "1", 0o640))), BACKUP, STAGING)
    assert [p.entry.mode for p in plan.tree] == [0o640]


# --- problems --------------------------------------------------------------------------------

PROBLEM_CASES = [
    pytest.param(home(root(CODEX, kind=Kind.SYMLINK)), "symlinked_root", CODEX, id="symlinked-legacy-root"),
    pytest.param(home(canon=root(CANON, kind=Kind.SYMLINK)), "symlinked_root", CANON, id="symlinked-canonical"),
    pytest.param(home(root(CODEX, F("a"), ancestors=((f"{H}/.codex", Kind.SYMLINK),))), "symlinked_root",
                 f"{H}/.codex", id="symlinked-ancestor"),
    pytest.param(home(root(CODEX, F("a")), canon=RootSnapshot(CANON, Kind.ABSENT, 0,
                 ((f"{H}/.agents", Kind.DIR), (f"{H}/.agents/otel", Kind.FILE)))), "not_a_directory",
                 f"{H}/.agents/otel", id="otel-dir-is-a-file"),
    pytest.param(home(root(CODEX, kind=Kind.FILE)), "not_a_directory", CODEX, id="legacy-root-is-a-file"),
    pytest.param(home(root(CODEX, F("a")), canon=root(CANON, kind=Kind.FILE)), "not_a_directory", CANON,
                 id="canonical-is-a-file"),
    pytest.param(home(root(CODEX, error="Permission denied")), "unreadable", CODEX, id="unlistable-root"),
    pytest.param(home(root(CODEX, Entry("a", Kind.FILE, 0o644, error="Permission denied"))), "unreadable",
                 f"{CODEX}/a", id="unreadable-file"),
    pytest.param(home(root(CODEX, Entry("p", Kind.OTHER, 0o644))), "unsupported_file", f"{CODEX}/p", id="fifo"),
    pytest.param(home(root(CODEX, L("l", "/etc/passwd", "/etc/passwd"))), "symlink_outside_home", f"{CODEX}/l",
                 id="link-outside-home"),
    pytest.param(home(root(CODEX, L("l", "../../../x", "/x"))), "symlink_outside_home", f"{CODEX}/l",
                 id="relative-link-outside-home"),
    pytest.param(home(root(CODEX, L("l", "../other", f"{H}/.codex/other"))), "symlink_escapes_root",
                 f"{CODEX}/l", id="relative-link-leaves-root"),
    pytest.param(home(root(CODEX, D("d"), F("d/x")), root(AGENTS, F("d"))), "kind_conflict", "d",
                 id="dir-vs-file"),
]  # fmt: skip


@pytest.mark.parametrize(("snap", "code", "path"), PROBLEM_CASES)
def test_problems(snap: HomeSnapshot, code: str, path: str) -> None:
    plan = plan_migration(snap, BACKUP, STAGING)
    assert [(p.code, p.path) for p in plan.problems] == [(code, path)]
    assert path in plan.problems[0].message
    assert "run the migration again" in plan.problems[0].message


def test_links_inside_the_home_and_root_are_fine() -> None:
    snap = home(root(CODEX, F("a"), L("rel", "a", f"{CODEX}/a"), L("abs", f"{H}/certs/ca.pem", f"{H}/certs/ca.pem")))
    plan = plan_migration(snap, BACKUP, STAGING)
    assert not plan.problems
    assert {p.entry.rel: p.entry.target for p in plan.tree} == {"a": None, "abs": f"{H}/certs/ca.pem", "rel": "a"}


def test_absent_legacy_behind_a_symlinked_ancestor_is_no_problem() -> None:
    snap = home(root(CODEX, kind=Kind.ABSENT, ancestors=((f"{H}/.codex", Kind.SYMLINK),)), root(AGENTS, F("a")))
    assert not plan_migration(snap, BACKUP, STAGING).problems


# --- changes, actions, decisions -------------------------------------------------------------


@pytest.mark.parametrize(
    ("snap", "changes"),
    [
        pytest.param(home(root(CODEX, F("a"))), True, id="no-canonical"),
        pytest.param(home(root(CODEX)), True, id="empty-legacy-no-canonical"),
        pytest.param(home(root(CODEX, F("a")), canon=root(CANON, F("a"))), False, id="same"),
        pytest.param(home(root(CODEX, F("a", "1")), canon=root(CANON, F("a", "2"))), False, id="canonical-wins"),
        pytest.param(home(root(CODEX, F("a"), F("b")), canon=root(CANON, F("a"))), True, id="new-legacy-file"),
        pytest.param(home(canon=root(CANON, F("a"))), False, id="canonical-only"),
        pytest.param(home(), False, id="fresh"),
    ],
)
def test_changes_canonical(snap: HomeSnapshot, changes: bool) -> None:
    assert plan_migration(snap, BACKUP, STAGING).changes_canonical is changes


def test_actions_are_ordered_and_exact() -> None:
    snap = home(root(CODEX, F("a", "1"), D("d"), F("d/x")), root(AGENTS, F("a", "2")), root(CANON, F("c")))
    plan = plan_migration(snap, BACKUP, STAGING)
    assert plan.actions == (
        f"create backup directory {BACKUP}",
        f"back up {CODEX} to {BACKUP}/legacy/1-codex-otel-collector (3 entries)",
        f"back up {AGENTS} to {BACKUP}/legacy/2-agents-otel-collector (1 entry)",
        f"create staging directory {STAGING}",
        f"copy {AGENTS}/a to {CANON}/a",
        f"conflict on a: keep {AGENTS}/a, not {CODEX}/a (contents differ; the other version stays where it is "
        "and in the backup)",
        f"copy {CANON}/c to {CANON}/c",
        f"create directory {CANON}/d",
        f"copy {CODEX}/d/x to {CANON}/d/x",
        f"swap the staged tree in as {CANON} atomically, moving the current tree to {BACKUP}/canonical/collector",
        "record status migrated (the legacy roots are left as they were)",
    )


@pytest.mark.parametrize(
    ("snap", "outcome", "decision"),
    [
        pytest.param(home(), None, Decision.NOTHING_LEGACY, id="fresh"),
        pytest.param(home(canon=root(CANON, F("a"))), None, Decision.NOTHING_LEGACY, id="canonical-only"),
        pytest.param(home(canon=root(CANON, F("a"))), "rolled_back", Decision.NOTHING_LEGACY, id="legacy-gone"),
        pytest.param(home(root(CODEX, F("a"))), None, Decision.MIGRATE, id="legacy"),
        pytest.param(home(root(CODEX, F("a")), canon=root(CANON, F("a"))), None, Decision.MIGRATE,
                     id="already-there-but-never-recorded"),
        pytest.param(home(root(CODEX, F("a")), canon=root(CANON, F("a"))), "migrated", Decision.UP_TO_DATE,
                     id="re-run"),
        pytest.param(home(root(CODEX, F("a"), F("b")), canon=root(CANON, F("a"))), "migrated", Decision.MIGRATE,
                     id="new-legacy-content"),
        pytest.param(home(root(CODEX, F("a")), canon=root(CANON, F("a"))), "rolled_back", Decision.MIGRATE,
                     id="after-rollback"),
    ],
)  # fmt: skip
def test_decide_run(snap: HomeSnapshot, outcome: str | None, decision: Decision) -> None:
    assert decide_run(snap, plan_migration(snap, BACKUP, STAGING), outcome) is decision


def test_rollback_actions() -> None:
    assert rollback_actions(CANON, True, "/b/canonical/collector", "/r/replaced/collector", STAGING) == (
        f"copy the pre-migration tree from /b/canonical/collector to staging directory {STAGING}",
        f"swap it in as {CANON} atomically, moving the current tree to /r/replaced/collector",
        "record status deferred",
    )
    assert rollback_actions(CANON, True, None, "/r/replaced/collector", STAGING) == (
        f"move {CANON} to /r/replaced/collector (it did not exist before the migration)",
        "record status deferred",
    )


# --- status ----------------------------------------------------------------------------------

JOURNAL = Journal(op="migrate", phase="swap", started_at_iso="t", staging="s", work_dir="w", aside="a",
                  canonical_existed=False)  # fmt: skip

STATUS_CASES = [
    # state, state problem, legacy exists, changes canonical -> status, required, has error
    (None, None, False, False, Status.NOT_NEEDED, False, False),
    (None, None, True, True, Status.NOT_STARTED, True, False),
    (None, None, True, False, Status.NOT_STARTED, True, False),
    (MigrationState(last_outcome="migrated"), None, True, False, Status.MIGRATED, False, False),
    (MigrationState(last_outcome="migrated"), None, True, True, Status.MIGRATED, True, False),
    (MigrationState(last_outcome="migrated"), None, True, None, Status.MIGRATED, True, False),
    (MigrationState(last_outcome="migrated"), None, False, False, Status.MIGRATED, False, False),
    (MigrationState(last_outcome="rolled_back"), None, True, False, Status.DEFERRED, True, False),
    (MigrationState(last_outcome="rolled_back"), None, False, False, Status.DEFERRED, False, False),
    (MigrationState(last_error="boom"), None, True, True, Status.FAILED, True, True),
    (MigrationState(last_outcome="migrated", last_error="boom"), None, True, False, Status.FAILED, False, True),
    (MigrationState(last_outcome="migrated", journal=JOURNAL), None, True, False, Status.FAILED, False, True),
    (None, "~/.agents is a symlink", True, None, Status.FAILED, True, True),
    (None, "~/.agents is a symlink", False, False, Status.FAILED, False, True),
]


@pytest.mark.parametrize(("state", "problem", "legacy", "changes", "status", "required", "error"), STATUS_CASES)
def test_decide_status(
    state: MigrationState | None,
    problem: str | None,
    legacy: bool,
    changes: bool | None,
    status: Status,
    required: bool,
    error: bool,
) -> None:
    got_status, got_required, last_error = decide_status(state, problem, legacy, changes)
    assert (got_status, got_required, last_error is not None) == (status, required, error)


def test_interrupted_operation_says_what_to_do() -> None:
    _, _, message = decide_status(MigrationState(journal=JOURNAL), None, True, True)
    assert message is not None and "interrupted" in message and "run the migration again" in message
