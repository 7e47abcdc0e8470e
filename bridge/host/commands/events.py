"""``get_live_events``: catching up on notifications a host missed (CONTRACT §3.5)."""

from __future__ import annotations

from typing import Any

import msgspec

from bridge import errors
from bridge.errors import BridgeError
from bridge.host.app import App
from bridge.host.registry import Params, command


class LiveEventsParams(Params):
    since_seq: int = msgspec.field(default=0)


@command("get_live_events", params=LiveEventsParams, result=list[dict[str, Any]])
async def get_live_events(app: App, params: LiveEventsParams) -> list[dict[str, Any]]:
    """Held notifications with ``seq > sinceSeq`` (the newest 10,000), oldest first."""
    held = app.notifier.since(params.since_seq)
    if held is None:
        raise BridgeError(
            errors.NOT_FOUND,
            f"Notifications after seq {params.since_seq} are no longer held (only the newest 10,000 are); "
            "re-read the state with the get_* commands instead.",
            reason="gap_too_old",
        )
    return held
