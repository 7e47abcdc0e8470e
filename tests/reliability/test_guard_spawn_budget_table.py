"""The spawn budget as a table: at most 3 spawns per 60 s, whoever asks."""

from __future__ import annotations

import pytest

from bridge.sidecar.policy import SpawnBudget, refund_spawn, request_spawn

# Each step: ("spawn", t) asks at t; ("refund", t) gives back the spawn made at t; ("reset", t) is a codex.* change.
Step = tuple[str, float]


def replay(steps: list[Step]) -> list[tuple[bool, float]]:
    budget = SpawnBudget()
    out: list[tuple[bool, float]] = []
    for action, t in steps:
        if action == "refund":
            budget = refund_spawn(budget, t)
            continue
        if action == "reset":
            budget = SpawnBudget()
            continue
        decision = request_spawn(budget, t)
        if decision.allowed:
            budget = decision.budget
        out.append((decision.allowed, round(decision.retry_after, 3)))
    return out


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        # three spawns fit, the fourth inside 60 s is refused until the first leaves the window
        ([("spawn", 0.0), ("spawn", 1.0), ("spawn", 2.0), ("spawn", 3.0)],
         [(True, 0.0), (True, 0.0), (True, 0.0), (False, 57.0)]),
        # host starts 1.5 s apart against automatic restarts: one budget for all
        ([("spawn", 0.0), ("spawn", 0.3), ("spawn", 1.5), ("spawn", 3.0), ("spawn", 4.5), ("spawn", 6.0)],
         [(True, 0.0), (True, 0.0), (True, 0.0), (False, 57.0), (False, 55.5), (False, 54.0)]),
        # exactly 60 s after the first spawn it has left the window
        ([("spawn", 0.0), ("spawn", 1.0), ("spawn", 2.0), ("spawn", 60.0)],
         [(True, 0.0), (True, 0.0), (True, 0.0), (True, 0.0)]),
        ([("spawn", 0.0), ("spawn", 1.0), ("spawn", 2.0), ("spawn", 59.999)],
         [(True, 0.0), (True, 0.0), (True, 0.0), (False, 0.001)]),
        # after a refused ask the retry time is honest: asking then succeeds
        ([("spawn", 0.0), ("spawn", 10.0), ("spawn", 20.0), ("spawn", 30.0), ("spawn", 60.0), ("spawn", 61.0)],
         [(True, 0.0), (True, 0.0), (True, 0.0), (False, 30.0), (True, 0.0), (False, 9.0)]),
        # a process stopped on request while alive gives its spawn back
        ([("spawn", 0.0), ("refund", 0.0), ("spawn", 1.0), ("refund", 1.0), ("spawn", 2.0), ("spawn", 3.0),
          ("spawn", 4.0)],
         [(True, 0.0), (True, 0.0), (True, 0.0), (True, 0.0), (True, 0.0)]),
        # a refund of an unknown time changes nothing
        ([("spawn", 0.0), ("spawn", 1.0), ("spawn", 2.0), ("refund", 7.0), ("spawn", 3.0)],
         [(True, 0.0), (True, 0.0), (True, 0.0), (False, 57.0)]),
        # a codex.* config change starts the budget over
        ([("spawn", 0.0), ("spawn", 1.0), ("spawn", 2.0), ("spawn", 3.0), ("reset", 4.0), ("spawn", 5.0)],
         [(True, 0.0), (True, 0.0), (True, 0.0), (False, 57.0), (True, 0.0)]),
    ],
)
def test_spawn_budget_table(steps: list[Step], expected: list[tuple[bool, float]]) -> None:
    assert replay(steps) == expected


def test_a_refused_ask_does_not_use_the_budget() -> None:
    budget = SpawnBudget((0.0, 1.0, 2.0))
    refused = request_spawn(budget, 3.0)
    assert not refused.allowed and refused.budget.spawns == (0.0, 1.0, 2.0)


def test_a_smaller_limit_and_window() -> None:
    budget = SpawnBudget(window=10.0, limit=1)
    first = request_spawn(budget, 0.0)
    assert first.allowed
    second = request_spawn(first.budget, 4.0)
    assert (second.allowed, second.retry_after) == (False, 6.0)
