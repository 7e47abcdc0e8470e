"""Approvals from the host's side (docs/protocol.md §3.5)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from bridge import errors
from bridge.capture.approvals import ApprovalBroker, canonical_decision
from bridge.errors import BridgeError
from bridge.host.app import App
from bridge.host.registry import NoParams, Params, command
from bridge.host.schemas_types import ApprovalRequest, ApprovalResult

NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]
METHOD = "codex_app_server_submit_approval"


class SubmitApprovalParams(Params):
    request_id: NonEmpty
    thread_id: NonEmpty
    decision_token: NonEmpty
    decision: str | None = None
    approved: bool | None = None  # what the existing host sends instead of decision
    reason: str | None = None


def broker(app: App) -> ApprovalBroker:
    if app.approvals is None:
        raise BridgeError(errors.INTERNAL_ERROR, "Approvals are not available; see the bridge log.")
    return app.approvals


@command(METHOD, params=SubmitApprovalParams, result=ApprovalResult)
async def submit_approval(app: App, params: SubmitApprovalParams) -> dict[str, Any]:  # an ApprovalResult
    """Answer a pending approval: accept, acceptForSession, decline or cancel (or approved: bool)."""
    if params.decision is not None:
        decision = canonical_decision(params.decision)
        if decision is None:
            raise errors.invalid_params(
                METHOD, "decision", f"must be accept, acceptForSession, decline or cancel, not {params.decision!r}"
            )
    elif params.approved is not None:
        decision = "accept" if params.approved else "decline"
    else:
        raise errors.invalid_params(METHOD, "decision", "is required (or approved: true|false)")
    if app.sidecar is not None and app.sidecar.observer:
        raise BridgeError(
            errors.NOT_ALLOWED, "Approvals belong to the user's own client while attached as an observer."
        )
    return broker(app).submit(params.request_id, params.thread_id, params.decision_token, decision, params.reason)


@command("list_pending_approvals", result=list[ApprovalRequest])
async def list_pending_approvals(app: App, params: NoParams) -> list[dict[str, Any]]:  # ApprovalRequests
    """Approval requests still waiting for a decision."""
    return broker(app).list_pending()
