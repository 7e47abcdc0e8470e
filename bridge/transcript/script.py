"""What a transcript says, arranged for a replay: pure planning, no I/O.

- :func:`conn_scripts`: per codex connection, the ordered steps the replay
  player performs: *expect* a frame the bridge sends (matched by method and
  order, or by id for answers to codex's own requests) or *emit* a frame codex
  sent (answers get the live request's id).
- :func:`host_plan`: the host commands that make a bridge send what it sent in
  the recording, derived from the codex side alone (so transcripts made by
  ``capture-bridge record`` replay too). Requests the bridge makes by itself
  (the re-handshake after a crash, the snapshot's page reads) have no step;
  an ``account/read`` step is *optional*: issued only when the bridge does not
  send it by itself right away.
- :func:`host_exchanges`: the recorded host requests with their recorded
  answers, for ``replay --host``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from bridge.transcript.format import Line, messages

APPROVAL_METHODS = {
    "item/commandExecution/requestApproval",
    "item/fileChange/requestApproval",
    "item/permissions/requestApproval",
}


def is_request(msg: Any) -> bool:
    return isinstance(msg, dict) and "method" in msg and "id" in msg


def is_notification(msg: Any) -> bool:
    return isinstance(msg, dict) and "method" in msg and "id" not in msg


def is_response(msg: Any) -> bool:
    return isinstance(msg, dict) and "method" not in msg and "id" in msg


@dataclass(frozen=True)
class Step:
    """One thing the player does: ``expect`` a frame from the bridge or ``emit`` a recorded one."""

    kind: Literal["expect", "emit"]
    msg: Any
    t: float
    ordinal: int  # position among all sidecar frames of the transcript


@dataclass
class ConnScript:
    conn: int
    steps: list[Step] = field(default_factory=list)
    exit_code: int | None = None
    exit_expected: bool = True
    exit_t: float | None = None


def conn_scripts(lines: Iterable[Line]) -> dict[int, ConnScript]:
    """The player's script for every codex connection of the transcript."""
    scripts: dict[int, ConnScript] = {}
    ordinal = 0
    for line in lines:
        if line.channel != "sidecar":
            continue
        script = scripts.setdefault(line.conn, ConnScript(line.conn))
        if line.event == "exit":
            script.exit_code, script.exit_expected, script.exit_t = line.code, line.expected, line.t
            continue
        if line.invalid:
            continue  # unreadable frames are kept for people, not replayed
        for msg in messages(line.msg):
            script.steps.append(Step("expect" if line.dir == "out" else "emit", msg, line.t, ordinal))
            ordinal += 1
    return scripts


def recorded_answers(lines: Iterable[Line]) -> dict[str, Any]:
    """The last recorded codex answer (result or error object) per request method, for unmatched requests."""
    methods: dict[tuple[int, Any], str] = {}
    answers: dict[str, Any] = {}
    for line in lines:
        if line.channel != "sidecar" or not line.is_frame:
            continue
        for msg in messages(line.msg):
            if line.dir == "out" and is_request(msg):
                methods[(line.conn, msg["id"])] = msg["method"]
            elif line.dir == "in" and is_response(msg):
                method = methods.get((line.conn, msg["id"]))
                if method is not None:
                    answers[method] = {k: v for k, v in msg.items() if k in ("result", "error")}
    return answers


# ------------------------------------------------------------------ the host plan


@dataclass(frozen=True)
class HostStep:
    """A host command to issue once the player waits at sidecar frame ``ordinal`` (None: at once)."""

    method: str
    params: dict[str, Any] | None
    ordinal: int | None
    conn: int
    approval: int | None = None  # for submit_approval: which approval request (0-based, in order)
    optional: bool = False  # the bridge may send it by itself (account/read): only if it does not


def _decision(result: Any) -> str:
    """The host decision that makes the bridge give codex ``result``."""
    if isinstance(result, dict):
        decision = result.get("decision")
        if isinstance(decision, str) and decision in ("accept", "acceptForSession", "decline", "cancel"):
            return decision
        if isinstance(decision, dict) and decision:
            return "accept"
        if "permissions" in result:
            grant = result.get("permissions")
            if not grant:
                return "decline"
            return "acceptForSession" if result.get("scope") == "session" else "accept"
    return "decline"


_DIRECT = {
    "account/login/cancel": "codex_app_server_account_login_cancel",
    "account/logout": "codex_app_server_account_logout",
    "thread/start": "codex_app_server_thread_start",
    "turn/start": "codex_app_server_turn_start",
    "turn/interrupt": "codex_app_server_turn_interrupt",
    "thread/list": "codex_app_server_thread_list",
    "thread/resume": "codex_app_server_thread_resume",
}


def host_plan(scripts: dict[int, ConnScript]) -> list[HostStep]:
    """Host commands that reproduce the bridge's side of the recorded codex connections."""
    plan: list[HostStep] = []
    approvals = 0
    previous: ConnScript | None = None
    for conn in sorted(scripts):
        script = scripts[conn]
        restarted = previous is not None and not previous.exit_expected  # the bridge re-handshakes itself
        snapshot_pages = False
        server_requests: dict[Any, str] = {}
        started = False
        handshake = restarted
        for step in script.steps:
            msg = step.msg
            if step.kind == "emit":
                if is_request(msg):
                    server_requests[msg["id"]] = msg["method"]
                continue
            if not started and not restarted:
                plan.append(HostStep("start_codex_app_server", None, step.ordinal, conn))
                started = True
            if is_response(msg):
                method = server_requests.get(msg["id"])
                if method in APPROVAL_METHODS and "result" in msg:
                    plan.append(
                        HostStep("codex_app_server_submit_approval", {"decision": _decision(msg["result"])},
                                 step.ordinal, conn, approval=approvals)
                    )  # fmt: skip
                if method in APPROVAL_METHODS:
                    approvals += 1
                continue
            method = msg.get("method")
            params = msg.get("params") if isinstance(msg.get("params"), dict) else {}
            if method == "initialize":
                if not handshake:
                    plan.append(HostStep("codex_app_server_initialize", None, step.ordinal, conn))
            elif method == "initialized":
                if not handshake:
                    plan.append(HostStep("codex_app_server_initialized", None, step.ordinal, conn))
                handshake = False
            elif method == "account/read":
                # The bridge reads the account itself after initialized and account notifications;
                # a host's explicit read looks the same on the wire.
                plan.append(HostStep("codex_app_server_account_read", None, step.ordinal, conn, optional=True))
            elif method == "account/login/start":
                login: dict[str, Any] = {"authMode": params.get("type", "chatgpt")}
                if "apiKey" in params:
                    login["apiKey"] = params["apiKey"]
                plan.append(HostStep("codex_app_server_account_login_start", login, step.ordinal, conn))
            elif method == "thread/read":
                snapshot_pages = True
                plan.append(
                    HostStep("codex_app_server_request_thread_snapshot", {"threadId": params.get("threadId")},
                             step.ordinal, conn)
                )  # fmt: skip
            elif method == "thread/turns/list" and snapshot_pages:
                continue
            elif method in _DIRECT:
                plan.append(HostStep(_DIRECT[method], dict(params), step.ordinal, conn))
        previous = script
    return plan


def required_auth_mode(scripts: dict[int, ConnScript]) -> str:
    """The auth mode the recording's codex reported (the replay bridge requires the same)."""
    for conn in sorted(scripts):
        for step in scripts[conn].steps:
            msg = step.msg
            if step.kind != "emit" or not isinstance(msg, dict):
                continue
            if msg.get("method") == "account/updated":
                mode = (msg.get("params") or {}).get("authMode")
                if isinstance(mode, str):
                    return mode
            result = msg.get("result")
            if isinstance(result, dict) and isinstance(result.get("account"), dict):
                mode = result["account"].get("type")
                if isinstance(mode, str):
                    return mode
    return "chatgpt"


def baseline_enabled(lines: Iterable[Line]) -> bool:
    """Whether the recording bridge's OTEL baseline was on (a replay bridge then runs it too).

    Judged from the capture modes it pushed: only ``FAILURE`` means the baseline was off. A
    transcript without a host side (``capture-bridge record``) replays with the baseline on.
    """
    seen = False
    for line in lines:
        if line.channel != "host" or line.dir != "out" or not line.is_frame:
            continue
        for msg in messages(line.msg):
            if is_notification(msg) and msg.get("method") == "capture-reliability-transition":
                seen = True
                if (msg.get("params") or {}).get("toMode") != "FAILURE":
                    return True
    return not seen


# ------------------------------------------------------------------ the recorded host side


@dataclass(frozen=True)
class Exchange:
    """A recorded host request and the answer the bridge gave it."""

    request: dict[str, Any]
    answer: dict[str, Any] | None
    t: float
    sidecar_before: int  # sidecar frames recorded before the request
    live_before: int  # session:live:event notifications the host had seen before it


def host_exchanges(lines: list[Line]) -> list[Exchange]:
    """Every recorded host request (batches flattened) with its recorded answer, in order."""
    answers: dict[Any, dict[str, Any]] = {}
    for line in lines:
        if line.channel == "host" and line.dir == "out" and line.is_frame:
            for msg in messages(line.msg):
                if is_response(msg) and msg["id"] is not None:
                    answers.setdefault(msg["id"], msg)
    out: list[Exchange] = []
    sidecar = 0
    live = 0
    for line in lines:
        if not line.is_frame:
            continue
        if line.channel == "sidecar":
            if not line.invalid:
                sidecar += len(messages(line.msg))
            continue
        for msg in messages(line.msg):
            if line.dir == "out":
                if is_notification(msg) and msg.get("method") == "session:live:event":
                    live += 1
            elif is_request(msg):
                out.append(Exchange(msg, answers.get(msg["id"]), line.t, sidecar, live))
    return out
