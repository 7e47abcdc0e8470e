"""Approvals: codex asks, the host decides (or the clock does), codex is answered once.

Each codex approval request gets a bridge ``requestId`` (a string; codex's own
JSON-RPC id stays here) and a one-time ``decisionToken`` bound to the request
and its thread. The host answers with ``codex_app_server_submit_approval``; a
request nobody answers within ``approvals.timeoutMs`` is declined by the
bridge (``decidedBy: "system"``) so a turn never hangs. Every outcome is
pushed as an ``ApprovalResult``.

Attached to the user's codex daemon as an observer (attach mode), the bridge
only records: :meth:`ApprovalBroker.on_observed` pushes the request (no
decision token, no options, no timeout: the user's own client answers it) and
codex's ``serverRequest/resolved`` pushes its result (``decidedBy: "user"``,
decision unknown to the bridge). Nothing is ever sent back to codex.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

import anyio
import msgspec
from anyio.abc import TaskGroup

from bridge import errors, tokens
from bridge.capture import codex_events as ce
from bridge.clock import now_iso
from bridge.errors import BridgeError
from bridge.redact import redact, redact_text

log = logging.getLogger("bridge.approvals")

KINDS = {
    "item/commandExecution/requestApproval": "commandExecution",
    "item/fileChange/requestApproval": "fileChange",
    "item/permissions/requestApproval": "permissions",
}
DECISIONS = ("accept", "acceptForSession", "decline", "cancel")
_DECODERS: dict[str, msgspec.json.Decoder[Any]] = {m: msgspec.json.Decoder(ce.SERVER_REQUESTS[m]) for m in KINDS}

Respond = Callable[[Any], Coroutine[Any, Any, None]]
Emit = Callable[[str, Any], int]


def canonical_decision(value: str) -> str | None:
    lowered = value.strip().lower()
    return next((d for d in DECISIONS if d.lower() == lowered), None)


class Pending(msgspec.Struct):
    request_id: str
    codex_id: int | str
    generation: int
    kind: str
    thread_id: str
    turn_id: str | None
    item_id: str | None
    command: str | None
    options: list[str]
    timeout_ms: int
    token: str
    permissions: Any
    respond: Respond
    created: float = msgspec.field(default_factory=time.monotonic)
    decided_by: str | None = None
    decision: str | None = None
    cancel: anyio.CancelScope = msgspec.field(default_factory=anyio.CancelScope)
    observed: bool = False  # attach mode: recorded only, the user's client answers

    def wire(self) -> dict[str, Any]:
        body = {
            "type": "ApprovalRequest", "requestId": self.request_id, "kind": self.kind, "threadId": self.thread_id,
            "turnId": self.turn_id, "itemId": self.item_id, "command": self.command, "options": self.options,
            "timeoutMs": self.timeout_ms, "decisionToken": self.token or None,
        }  # fmt: skip
        if self.observed:
            body["observed"] = True
        return body


async def _never_answer(answer: Any) -> None:
    raise BridgeError(errors.NOT_ALLOWED, "An observed approval is answered by the user's own client.")


def codex_answer(pending: Pending, decision: str) -> dict[str, Any]:
    """What codex expects for this kind of request and decision."""
    if pending.kind == "permissions":
        if decision in ("accept", "acceptForSession"):
            return {
                "permissions": pending.permissions or {},
                "scope": "session" if decision == "acceptForSession" else "turn",
            }
        return {"permissions": {}}
    return {"decision": decision}


class ApprovalBroker:
    """Pending approvals, their tokens and timeouts."""

    def __init__(self, emit: Emit, timeout_ms: Callable[[], int], keep_decided: int = 1000) -> None:
        self._emit = emit
        self._timeout_ms = timeout_ms
        self._ids = itertools.count(1)
        self.pending: dict[str, Pending] = {}
        self.decided: dict[str, Pending] = {}
        self._keep_decided = keep_decided
        self.tg: TaskGroup | None = None
        self.timeouts_total = 0
        self.generation = 0

    # ------------------------------------------------------------ from codex
    def on_request(self, method: str, codex_id: int | str, params: bytes, respond: Respond) -> None:
        """A codex server request arrived (sync: called from the client's read loop)."""
        kind = KINDS[method]
        try:
            p = _DECODERS[method].decode(params)
        except msgspec.ValidationError as exc:
            log.warning("approval request %s does not fit its schema: %s; declining", method, redact_text(str(exc)))
            assert self.tg is not None
            refusal: dict[str, Any] = {"decision": "decline"} if kind != "permissions" else {"permissions": {}}
            self.tg.start_soon(respond, refusal)
            return
        options = ["accept", "acceptForSession", "decline", "cancel"]
        command = getattr(p, "command", None)
        pending = Pending(
            request_id=f"apr-{next(self._ids)}-{tokens.token_hex(4)}",
            codex_id=codex_id,
            generation=self.generation,
            kind=kind,
            thread_id=p.thread_id,
            turn_id=p.turn_id,
            item_id=p.item_id,
            command=redact_text(command) if command else None,
            options=options,
            timeout_ms=self._timeout_ms(),
            token=tokens.token_urlsafe(24),
            permissions=getattr(p, "permissions", None),
            respond=respond,
        )
        self.pending[pending.request_id] = pending
        self._emit("session:live:event", pending.wire())
        assert self.tg is not None
        self.tg.start_soon(self._expire, pending)

    def on_observed(self, method: str, codex_id: int | str, params: bytes) -> None:
        """Attach mode: record a request the user's own client will answer (never answered here)."""
        try:
            p = _DECODERS[method].decode(params)
        except msgspec.ValidationError as exc:
            log.warning("observed approval request %s does not fit its schema: %s", method, redact_text(str(exc)))
            return
        command = getattr(p, "command", None)
        pending = Pending(
            request_id=f"apr-{next(self._ids)}-{tokens.token_hex(4)}",
            codex_id=codex_id,
            generation=self.generation,
            kind=KINDS[method],
            thread_id=p.thread_id,
            turn_id=p.turn_id,
            item_id=p.item_id,
            command=redact_text(command) if command else None,
            options=[],
            timeout_ms=0,
            token="",
            permissions=None,
            respond=_never_answer,
            observed=True,
        )
        self.pending[pending.request_id] = pending
        self._emit("session:live:event", pending.wire())

    def on_resolved(self, thread_id: str, codex_id: int | str) -> None:
        """codex says a request was resolved (answered elsewhere or its turn ended)."""
        for pending in list(self.pending.values()):
            if (
                pending.codex_id == codex_id
                and pending.thread_id == thread_id
                and pending.generation == self.generation
            ):
                if pending.observed:
                    self._finish_observed(pending, "user", "answered by the user's own codex client")
                else:
                    self._finish(pending, "cancel", "system", "resolved by the sidecar", answer=False)

    def sidecar_restarted(self) -> None:
        """Requests of a dead sidecar can no longer be answered: they become stale."""
        self.generation += 1
        for pending in list(self.pending.values()):
            if pending.observed:
                self._finish_observed(pending, "system", "the connection to the codex daemon ended before it resolved")
            else:
                self._finish(pending, "cancel", "system", "the sidecar restarted before a decision", answer=False)

    async def _expire(self, pending: Pending) -> None:
        with pending.cancel:
            await anyio.sleep(pending.timeout_ms / 1000)
            if pending.request_id in self.pending:
                self.timeouts_total += 1
                self._finish(pending, "decline", "system", f"no decision within {pending.timeout_ms} ms")

    # ------------------------------------------------------------ from the host
    def submit(self, request_id: str, thread_id: str, token: str, decision: str, reason: str | None) -> dict[str, Any]:
        pending = self.pending.get(request_id)
        if pending is None:
            done = self.decided.get(request_id)
            if done is None:
                raise BridgeError(
                    errors.NOT_FOUND,
                    f"No approval request {request_id}; list_pending_approvals shows those still waiting.",
                    reason="not_found",
                )
            if not tokens.same(done.token, token):
                raise _rejected("invalid_token", request_id)
            if done.decided_by == "system":
                raise _rejected(
                    "already_decided", request_id, f"it was already decided by the bridge ({done.decision})"
                )
            raise _rejected("replayed", request_id, "this decision token was already used")
        if pending.observed:
            raise BridgeError(
                errors.NOT_ALLOWED, f"Approval {request_id} belongs to the user's own codex client; it answers it."
            )
        if not tokens.same(pending.token, token) or pending.thread_id != thread_id:
            raise _rejected("invalid_token", request_id)
        if pending.generation != self.generation:
            raise _rejected("stale", request_id, "the sidecar that asked has restarted")
        return self._finish(pending, decision, "user", reason)

    def list_pending(self) -> list[dict[str, Any]]:
        return [p.wire() for p in self.pending.values()]

    # ------------------------------------------------------------ deciding
    def _finish(
        self, pending: Pending, decision: str, by: str, reason: str | None, *, answer: bool = True
    ) -> dict[str, Any]:
        self.pending.pop(pending.request_id, None)
        pending.decided_by = by
        pending.decision = decision
        pending.cancel.cancel()
        self.decided[pending.request_id] = pending
        while len(self.decided) > self._keep_decided:
            self.decided.pop(next(iter(self.decided)))
        if answer and self.tg is not None:
            self.tg.start_soon(self._answer, pending, codex_answer(pending, decision))
        result = {
            "type": "ApprovalResult", "requestId": pending.request_id, "threadId": pending.thread_id,
            "approved": decision in ("accept", "acceptForSession"), "decision": decision,
            "decidedAtIso": now_iso(), "decidedBy": by,
            "reason": redact_text(reason) if reason else None,
        }  # fmt: skip
        self._emit("session:live:event", result)
        return result

    def _finish_observed(self, pending: Pending, by: str, reason: str) -> None:
        """An observed request left codex's queue; what the user decided is in the item's final status."""
        self.pending.pop(pending.request_id, None)
        pending.decided_by = by
        self.decided[pending.request_id] = pending
        while len(self.decided) > self._keep_decided:
            self.decided.pop(next(iter(self.decided)))
        self._emit(
            "session:live:event",
            {"type": "ApprovalResult", "requestId": pending.request_id, "threadId": pending.thread_id,
             "approved": None, "decision": None, "decidedAtIso": now_iso(), "decidedBy": by,
             "reason": reason, "observed": True},
        )  # fmt: skip

    async def _answer(self, pending: Pending, answer: dict[str, Any]) -> None:
        try:
            await pending.respond(answer)
        except Exception as exc:
            log.warning("answering approval %s failed: %s", pending.request_id, redact(str(exc)))


def _rejected(reason: str, request_id: str, detail: str = "") -> BridgeError:
    words = {
        "invalid_token": "the decision token or thread does not match the request",
        "replayed": "the decision token was already used",
        "stale": "the request belongs to a sidecar that has restarted",
        "already_decided": "the request was already decided",
    }[reason]
    return BridgeError(
        errors.APPROVAL_REJECTED,
        f"Approval {request_id} rejected: {detail or words}.",
        reason=reason,
    )
