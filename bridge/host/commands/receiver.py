"""``get_otlp_receiver_status`` and ``set_otlp_receiver_enabled`` (docs/protocol.md §3.7)."""

from __future__ import annotations

from bridge.host.app import App
from bridge.host.registry import NoParams, Params, command
from bridge.receiver.auth import HEADER_NAME
from bridge.receiver.status import ReceiverStatus


class SetReceiverEnabledParams(Params):
    enabled: bool


def _not_started(app: App) -> ReceiverStatus:
    return ReceiverStatus(
        state="stopped",
        endpoint=None,
        header_name=HEADER_NAME,
        last_batch_at_iso=None,
        accepted=0,
        rejected=0,
        message="The receiver has not started yet.",
        enabled=app.config.current.otlp_receiver.enabled,
        records_stored=0,
        records_duplicate=0,
        records_rejected=0,
        records_discarded=0,
    )


@command("get_otlp_receiver_status", result=ReceiverStatus)
async def get_otlp_receiver_status(app: App, params: NoParams) -> ReceiverStatus:
    """The receiver's state, endpoint, header name and counters (never the key)."""
    return app.receiver.status() if app.receiver is not None else _not_started(app)


@command("set_otlp_receiver_enabled", params=SetReceiverEnabledParams, result=ReceiverStatus)
async def set_otlp_receiver_enabled(app: App, params: SetReceiverEnabledParams) -> ReceiverStatus:
    """Persist ``otlpReceiver.enabled``; returns once the receiver listens (or failed to) or stopped."""
    from bridge.host.commands.config import apply_config

    await apply_config(app, {"otlpReceiver": {"enabled": params.enabled}})
    return app.receiver.status() if app.receiver is not None else _not_started(app)
