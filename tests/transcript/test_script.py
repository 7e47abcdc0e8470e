"""Planning a replay from a transcript (pure, as tables)."""

from __future__ import annotations

from typing import Any

from bridge.transcript.format import Line
from bridge.transcript.script import (
    baseline_enabled,
    conn_scripts,
    host_exchanges,
    host_plan,
    recorded_answers,
    required_auth_mode,
)


def side(direction: str, msg: Any, conn: int = 1, t: float = 0.0) -> Line:
    return Line(t=t, ts="", channel="sidecar", dir=direction, msg=msg, conn=conn)  # type: ignore[arg-type]


def host(direction: str, msg: Any, t: float = 0.0) -> Line:
    return Line(t=t, ts="", channel="host", dir=direction, msg=msg)  # type: ignore[arg-type]


def exit_of(conn: int, code: int, expected: bool) -> Line:
    return Line(t=9.0, ts="", channel="sidecar", dir="in", conn=conn, event="exit", code=code, expected=expected)


HANDSHAKE = [
    side("out", {"id": 0, "method": "initialize", "params": {}}),
    side("in", {"id": 0, "result": {"userAgent": "codex"}}),
    side("out", {"method": "initialized"}),
    side("out", {"id": 1, "method": "account/read", "params": {}}),
    side("in", {"id": 1, "result": {"account": None}}),
]
LOGIN = [
    side("out", {"id": 2, "method": "account/login/start", "params": {"type": "apiKey", "apiKey": "[REDACTED]"}}),
    side("in", {"id": 2, "result": {"type": "apiKey"}}),
    side("in", {"method": "account/login/completed", "params": {"success": True}}),
    side("out", {"id": 3, "method": "account/read", "params": {}}),  # the bridge's own check
    side("in", {"method": "account/updated", "params": {"authMode": "apikey"}}),
    side("in", {"id": 3, "result": {"account": {"type": "apiKey"}}}),
]
TURN = [
    side("out", {"id": 4, "method": "thread/start", "params": {"cwd": "/w"}}),
    side("in", {"id": 4, "result": {"thread": {"id": "th"}}}),
    side("out", {"id": 5, "method": "turn/start", "params": {"threadId": "th", "input": []}}),
    side("in", {"id": 5, "result": {"turn": {"id": "tu"}}}),
    side("in", {"id": 0, "method": "item/commandExecution/requestApproval", "params": {"threadId": "th"}}),
    side("out", {"id": 0, "result": {"decision": "acceptForSession"}}),
    side("out", {"id": 6, "method": "account/read", "params": {}}),  # the host asked
    side("in", {"id": 6, "result": {"account": {"type": "apiKey"}}}),
]


def test_scripts_split_connections_and_keep_the_exit() -> None:
    lines = [*HANDSHAKE, exit_of(1, -9, False), side("out", {"id": 0, "method": "initialize"}, conn=2)]
    scripts = conn_scripts(lines)
    assert sorted(scripts) == [1, 2]
    assert [s.kind for s in scripts[1].steps] == ["expect", "emit", "expect", "expect", "emit"]
    assert [s.ordinal for s in scripts[1].steps] == [0, 1, 2, 3, 4]
    assert (scripts[1].exit_code, scripts[1].exit_expected) == (-9, False)
    assert scripts[2].steps[0].ordinal == 5 and scripts[2].exit_t is None


def test_the_host_plan_leaves_out_what_the_bridge_does_by_itself() -> None:
    plan = host_plan(conn_scripts([*HANDSHAKE, *LOGIN, *TURN]))
    assert [(p.method, p.ordinal) for p in plan] == [
        ("start_codex_app_server", 0),
        ("codex_app_server_initialize", 0),
        ("codex_app_server_initialized", 2),
        ("codex_app_server_account_read", 3),
        ("codex_app_server_account_login_start", 5),
        ("codex_app_server_account_read", 8),
        ("codex_app_server_thread_start", 11),
        ("codex_app_server_turn_start", 13),
        ("codex_app_server_submit_approval", 16),
        ("codex_app_server_account_read", 17),
    ]
    assert [p.optional for p in plan].count(True) == 3  # every account/read: the bridge may send it itself
    assert plan[4].params == {"authMode": "apiKey", "apiKey": "[REDACTED]"}
    assert plan[8].params == {"decision": "acceptForSession"} and plan[8].approval == 0


def test_after_a_crash_the_restart_and_handshake_are_the_bridges_own() -> None:
    second = [side(d, m, conn=2) for d, m in ((x.dir, x.msg) for x in HANDSHAKE)]
    plan = host_plan(conn_scripts([*HANDSHAKE, exit_of(1, -9, False), *second]))
    assert [p.method for p in plan] == [
        "start_codex_app_server", "codex_app_server_initialize", "codex_app_server_initialized",
        "codex_app_server_account_read", "codex_app_server_account_read",
    ]  # fmt: skip
    assert [p.conn for p in plan if p.method == "codex_app_server_account_read"] == [1, 2]
    stopped = host_plan(conn_scripts([*HANDSHAKE, exit_of(1, 0, True), *second]))
    assert [p.method for p in stopped].count("start_codex_app_server") == 2


def test_required_mode_and_recorded_answers() -> None:
    lines = [*HANDSHAKE, *LOGIN]
    assert required_auth_mode(conn_scripts(lines)) == "apikey"
    assert required_auth_mode(conn_scripts(HANDSHAKE)) == "chatgpt"
    assert recorded_answers(lines)["account/read"] == {"result": {"account": {"type": "apiKey"}}}


def test_the_baseline_follows_the_recorded_modes() -> None:
    def transition(mode: str) -> Line:
        return host("out", {"method": "capture-reliability-transition", "params": {"toMode": mode}})

    assert baseline_enabled([transition("FAILURE")]) is False
    assert baseline_enabled([transition("FAILURE"), transition("HYBRID_ACTIVE")]) is True
    assert baseline_enabled(HANDSHAKE) is True  # no host side: on


def test_host_exchanges_pair_requests_with_answers_and_count_what_came_before() -> None:
    lines = [
        host("in", {"id": 1, "method": "bridge_info"}),
        host("out", {"id": 1, "result": {"name": "capture-bridge"}}),
        *HANDSHAKE[:2],
        host("out", {"method": "session:live:event", "params": {}}),
        host("in", [{"id": 2, "method": "get_codex_app_server_status"}, {"method": "note"}]),
    ]
    exchanges = host_exchanges(lines)
    assert [(e.request["method"], e.sidecar_before, e.live_before) for e in exchanges] == [
        ("bridge_info", 0, 0),
        ("get_codex_app_server_status", 2, 1),
    ]
    assert exchanges[0].answer == {"id": 1, "result": {"name": "capture-bridge"}}
    assert exchanges[1].answer is None


def test_first_difference_tolerates_new_fields_only() -> None:
    from bridge.transcript.compare import first_difference, normalise

    assert first_difference({"a": 1}, {"a": 1, "new": 2}) is None
    assert first_difference({"a": 1, "old": 2}, {"a": 1}) == (".old", 2, "<absent>")
    assert first_difference({"a": [1, {"b": "x"}]}, {"a": [1, {"b": "y"}]}) == (".a[1].b", "x", "y")
    assert first_difference([1], [1, 2]) == (".length", 1, 2)
    assert normalise({"pid": 7, "lastInfo": "started (pid 1234) in 0.25 s", "atIso": "t"}) == {
        "lastInfo": "started (pid N) in N s"
    }


def test_a_command_list_may_grow_but_never_lose_a_recorded_command() -> None:
    from bridge.transcript.compare import first_difference

    recorded = {"commands": ["a", "b"]}
    assert first_difference(recorded, {"commands": ["a", "new", "b"]}) is None
    assert first_difference(recorded, {"commands": ["b"]}) == (".commands", "a", "<absent>")
    # Any other list keeps its order and its length.
    assert first_difference({"turns": ["a", "b"]}, {"turns": ["a", "new", "b"]}) == (".turns[1]", "b", "new")
