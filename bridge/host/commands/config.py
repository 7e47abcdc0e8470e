"""``get_ingest_config`` / ``set_ingest_config`` (CONTRACT §3.7)."""

from __future__ import annotations

from typing import Any

from bridge import errors
from bridge.config.model import IngestConfig
from bridge.config.validate import ConfigError
from bridge.host.app import App
from bridge.host.registry import NoParams, command


@command("get_ingest_config", result=IngestConfig)
async def get_ingest_config(app: App, params: NoParams) -> IngestConfig:
    """The current config with every default filled in."""
    return app.config.current


async def apply_config(app: App, patch: dict[str, Any]) -> IngestConfig:
    """Validate, persist and apply a config patch (shared with other commands)."""
    old = app.config.current
    try:
        new = app.config.update(patch)
    except ConfigError as exc:
        raise errors.invalid_params("set_ingest_config", exc.field, exc.problem) from None
    from bridge.host import services

    await services.config_changed(app, old, new)
    return new


@command("set_ingest_config", params=dict, result=IngestConfig)
async def set_ingest_config(app: App, params: dict[str, Any]) -> IngestConfig:
    """Deep-merge a partial config (dotted-field errors); returns once the change has taken effect."""
    return await apply_config(app, params)
