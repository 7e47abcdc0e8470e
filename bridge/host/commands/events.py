"""``get_live_events``: catching up on notifications a host missed."""

from __future__ import annotations

from typing import Any

import msgspec

from bridge import errors
from bridge.errors import BridgeError
from bridge.host.app import App
from bridge.host.registry import Params, command
from bridge.host.schemas_types import HeldNotification


class LiveEventsParams(Params):
    since_seq: int = msgspec.field(default=0)
    run_id: str | None = None  # the bridge_info runId the host's sinceSeq belongs to


@command("get_live_events", params=LiveEventsParams, result=list[HeldNotification])
async def get_live_events(app: App, params: LiveEventsParams) -> list[dict[str, Any]]:  # held notifications
    """Held notifications with ``seq > sinceSeq`` (the newest 10,000), oldest first.

    ``seq`` starts again at 1 in every bridge process, so a ``sinceSeq`` from
    an earlier run would silently skip (or re-deliver) events: a ``sinceSeq``
    ahead of the newest seq, or a ``runId`` of another run, is answered
    ``bridge_restarted`` instead of a list.
    """
    notifier = app.notifier
    last = notifier.last_seq
    if params.run_id is not None and params.run_id != notifier.run_id:
        raise _restarted(notifier.run_id, last, f"runId {params.run_id!r} belongs to another run of the bridge")
    if params.since_seq > last:
        raise _restarted(notifier.run_id, last, f"sinceSeq {params.since_seq} is ahead of the newest seq {last}")
    held = notifier.since(params.since_seq)
    if held is None:
        raise BridgeError(
            errors.NOT_FOUND,
            f"Notifications after seq {params.since_seq} are no longer held (only the newest 10,000 are); "
            "re-read the state with the get_* commands instead.",
            reason="gap_too_old",
        )
    return held


def _restarted(run_id: str, last: int, why: str) -> BridgeError:
    return BridgeError(
        errors.NOT_FOUND,
        f"{why}: the bridge restarted and numbers its notifications from 1 again (runId {run_id}). "
        "Re-read the state with the get_* commands and resume with sinceSeq 0 and this runId.",
        reason="bridge_restarted",
        runId=run_id,
        lastSeq=last,
    )
