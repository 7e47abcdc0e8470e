"""``get_ingest_config`` / ``set_ingest_config``: checked, applied, then kept; secrets masked."""

from __future__ import annotations

import logging
from typing import Any

from bridge import errors
from bridge.config.masking import masked, unmask_patch
from bridge.config.model import IngestConfig
from bridge.config.validate import ConfigError
from bridge.errors import BridgeError
from bridge.host.app import App
from bridge.host.registry import NoParams, command
from bridge.redact import redact_text

log = logging.getLogger(__name__)


@command("get_ingest_config", result=IngestConfig)
async def get_ingest_config(app: App, params: NoParams) -> IngestConfig:
    """The current config with every default filled in, secret values masked."""
    return masked(app.config.current)


async def apply_config(app: App, patch: dict[str, Any]) -> IngestConfig:
    """Validate, persist and apply a config patch (shared with other commands).

    A change that fails to apply is rolled back (file and subsystems), so a
    value that cannot work is never what the next start reads.
    """
    old = app.config.current
    try:
        new = app.config.update(unmask_patch(patch, old))
    except ConfigError as exc:
        raise errors.invalid_params("set_ingest_config", exc.field, exc.problem) from None
    from bridge.host import services

    receiver_was_failing = app.receiver is not None and app.receiver.status().state == "error"
    try:
        await services.config_changed(app, old, new)
        failure = None if receiver_was_failing else _receiver_failure(app, old, new)
    except BridgeError as exc:
        await _roll_back(app, new, old)
        raise exc from None
    except Exception as exc:
        log.exception("applying the config change failed; rolled back")
        await _roll_back(app, new, old)
        field = next((name for name in _changed(old, new)), "")
        raise errors.invalid_params(
            "set_ingest_config", field, f"could not be applied ({redact_text(str(exc))[:200]}); nothing was changed"
        ) from None
    if failure is not None:
        await _roll_back(app, new, old)
        raise errors.invalid_params("set_ingest_config", *failure)
    return new


def _changed(old: IngestConfig, new: IngestConfig) -> list[str]:
    """The top-level fields (wire names) that differ."""
    fields = zip(IngestConfig.__struct_fields__, IngestConfig.__struct_encode_fields__, strict=True)
    return [wire for name, wire in fields if getattr(old, name) != getattr(new, name)]


def _receiver_failure(app: App, old: IngestConfig, new: IngestConfig) -> tuple[str, str] | None:
    """The receiver could not take a changed address: (field, problem), else None."""
    receiver = app.receiver
    rx_old, rx_new = old.otlp_receiver, new.otlp_receiver
    if receiver is None or rx_new == rx_old or not rx_new.enabled:
        return None
    status = receiver.status()
    if status.state != "error":
        return None
    field = "otlpReceiver.port" if rx_new.port != rx_old.port else "otlpReceiver.host"
    return field, f"could not be applied: {status.message or 'the receiver could not listen'}; nothing was changed"


async def _roll_back(app: App, failed: IngestConfig, old: IngestConfig) -> None:
    from bridge.host import services

    app.config.restore(old)
    try:
        await services.config_changed(app, failed, old)
    except Exception:
        log.exception("re-applying the previous config after a failed change failed")


@command("set_ingest_config", params=dict, result=IngestConfig)
async def set_ingest_config(app: App, params: dict[str, Any]) -> IngestConfig:
    """Deep-merge a partial config (dotted-field errors); returns once the change has taken effect."""
    return masked(await apply_config(app, params))
