"""The supervisor's sequencing as a table (bridge/sidecar/lifecycle.py): each row is a run of events.

Steps (``t`` is monotonic seconds, jitter is 0 so delays are the lower bound):
``("start", mode)`` a host start (refused with the reason when it must be); ``("spawn", t)`` asks the spawn
budget and spawns if it allows; ``("connect", 0)`` the daemon answered; ``("exit", t)`` an unexpected exit of a
spawned codex; ``("due", token)`` a restart's delay is over (token -1: the token taken at the last exit);
``("lost", 0)`` the daemon closed the connection; ``("fail", n)`` the n-th failed connection in a row;
``("stop", spawned_at)`` a host stop (-1: nothing alive); ``("kill", 1|0)`` the kill switch turned on/off;
``("codex", 0)`` a ``codex.*`` change.
"""

from __future__ import annotations

from typing import Any

import pytest

from bridge.sidecar.lifecycle import UP, Lifecycle

Step = tuple[str, Any]


def run(steps: list[Step]) -> tuple[Lifecycle, list[Any]]:
    lc = Lifecycle()
    kill = False
    exit_token = 0
    seen: list[Any] = []
    for action, arg in steps:
        if action == "start":
            refusal = lc.start_refusal(arg, kill_switch=kill)
            if refusal is not None:
                seen.append(refusal)
                continue
            lc = lc.start(arg)
        elif action == "spawn":
            decision = lc.request_spawn(arg)
            if decision.allowed:
                lc = lc.spawned(decision)
            else:
                lc = lc.spawn_refused()
                seen.append(("refused", round(decision.retry_after, 3)))
        elif action == "connect":
            lc = lc.connected()
        elif action == "exit":
            lc, verdict = lc.unexpected_exit(arg, 0.0, kill_switch=kill)
            exit_token = lc.token
            seen.append((verdict.action, verdict.attempts, round(verdict.delay, 3)))
        elif action == "due":
            lc, what = lc.restart_due(exit_token if arg == -1 else arg, kill_switch=kill)
            seen.append(what)
        elif action == "lost":
            lc, delay = lc.connection_lost(0.0)
            seen.append(("reconnect", delay))
        elif action == "fail":
            lc, delay = lc.connection_failed(arg, 0.0)
            seen.append(("retry", delay))
        elif action == "stop":
            lc = lc.stop_requested()
            if arg != -1:
                lc = lc.stopping(arg)
            lc = lc.stopped()
        elif action == "kill":
            kill = bool(arg)
            lc = lc.config_changed(codex_changed=False, kill_switch_on=kill, connected=lc.phase == UP)
        elif action == "codex":
            lc = lc.config_changed(codex_changed=True, kill_switch_on=False, connected=lc.phase == UP)
        else:
            raise AssertionError(action)
    return lc, seen


ROWS: list[tuple[str, list[Step], str, list[Any]]] = [
    ("a start spawns and is up", [("start", "spawn"), ("spawn", 0.0)], UP, []),
    ("exits 1 and 2 restart with backoff, the 3rd within 60 s is crash_loop",
     [("start", "spawn"), ("spawn", 0.0), ("exit", 1.0), ("due", -1), ("spawn", 1.2), ("exit", 2.0), ("due", -1),
      ("spawn", 2.3), ("exit", 3.0)],
     "crash_loop",
     [("restart", 1, 0.125), "go", ("restart", 2, 0.25), "go", ("crash_loop", 3, 0.0)]),
    ("a host start after crash_loop is refused by the spawn budget (-32015 retryAfterMs)",
     [("start", "spawn"), ("spawn", 0.0), ("exit", 1.0), ("spawn", 1.2), ("exit", 2.0), ("spawn", 2.3),
      ("exit", 3.0), ("start", "spawn"), ("spawn", 4.0)],
     "crash_loop",
     [("restart", 1, 0.125), ("restart", 2, 0.25), ("crash_loop", 3, 0.0), ("refused", 56.0)]),
    ("exits age out of the window: the third exit 60 s after the first is restarted",
     [("start", "spawn"), ("spawn", 0.0), ("exit", 0.0), ("spawn", 0.2), ("exit", 30.0), ("spawn", 30.3),
      ("exit", 60.0)],
     "starting",
     [("restart", 1, 0.125), ("restart", 2, 0.25), ("restart", 2, 0.25)]),
    ("a host start during a pending restart supersedes it",
     [("start", "spawn"), ("spawn", 0.0), ("exit", 1.0), ("start", "spawn"), ("due", -1)],
     "starting",
     [("restart", 1, 0.125), "superseded"]),
    ("a stop during a pending restart supersedes it",
     [("start", "spawn"), ("spawn", 0.0), ("exit", 1.0), ("stop", -1), ("due", -1)],
     "inactive",
     [("restart", 1, 0.125), "superseded"]),
    ("the kill switch on during a pending restart: nothing restarts",
     [("start", "spawn"), ("spawn", 0.0), ("exit", 1.0), ("kill", 1), ("due", -1)],
     "inactive",
     [("restart", 1, 0.125), "superseded"]),
    ("an exit with the kill switch on is not restarted; start is refused",
     [("start", "spawn"), ("spawn", 0.0), ("kill", 1), ("exit", 1.0), ("start", "spawn")],
     "inactive",
     [("not_restarted", 0, 0.0), "kill_switch"]),
    ("a stop of a live process gives its spawn back: four start/stop rounds fit",
     [("start", "spawn"), ("spawn", 0.0), ("stop", 0.0), ("start", "spawn"), ("spawn", 1.0), ("stop", 1.0),
      ("start", "spawn"), ("spawn", 2.0), ("stop", 2.0), ("start", "spawn"), ("spawn", 3.0)],
     UP, []),
    ("a codex.* change resets the spawn budget",
     [("start", "spawn"), ("spawn", 0.0), ("exit", 1.0), ("spawn", 1.2), ("exit", 2.0), ("spawn", 2.3),
      ("exit", 3.0), ("codex", 0), ("start", "spawn"), ("spawn", 4.0)],
     UP,
     [("restart", 1, 0.125), ("restart", 2, 0.25), ("crash_loop", 3, 0.0)]),
    ("attach: a lost connection reconnects (never crash_loop), failures back off",
     [("start", "attach"), ("connect", 0), ("lost", 0), ("fail", 2), ("fail", 3), ("connect", 0)],
     UP,
     [("reconnect", 0.25), ("retry", 0.5), ("retry", 1.0)]),
    ("a start in the other mode is refused until a stop",
     [("start", "attach"), ("connect", 0), ("start", "spawn"), ("stop", -1), ("start", "spawn"), ("spawn", 0.0)],
     UP,
     ["other_mode"]),
]


@pytest.mark.parametrize(("name", "steps", "phase", "seen"), ROWS, ids=[r[0] for r in ROWS])
def test_lifecycle(name: str, steps: list[Step], phase: str, seen: list[Any]) -> None:
    lc, got = run(steps)
    assert (lc.phase, got) == (phase, seen)


def test_crash_loop_keeps_showing_the_count_that_tripped_it() -> None:
    lc, _ = run([("start", "spawn"), ("spawn", 0.0), ("exit", 1.0), ("spawn", 1.2), ("exit", 2.0), ("spawn", 2.3),
                 ("exit", 3.0)])  # fmt: skip
    assert lc.restart_attempts(120.0) == 3  # long after the window, until a stop or start
    assert lc.stopped().restart_attempts(120.0) == 0
    assert Lifecycle().start("spawn").restart_attempts(0.0) == 0
