"""Secret values of the config come back masked; the mask written back keeps the stored secret.

The secrets are the values in ``codex.env`` and ``export.headers`` whose
names the project's redaction rule (:func:`bridge.redact.secret_key`) calls
secret, e.g. ``OPENAI_API_KEY`` or ``Authorization``. A host that reads the
config, edits one field and writes the whole object back must not wipe the
secrets it was never shown, so a value equal to the mask means "keep".
"""

from __future__ import annotations

from typing import Any

import msgspec

from bridge.config.model import IngestConfig
from bridge.config.validate import ConfigError, normalize_keys
from bridge.redact import MASK, secret_key

# (section, map) holding free-form names whose values may be secrets.
SECRET_MAPS = (("codex", "env"), ("export", "headers"))


def _mask_map(values: dict[str, str]) -> dict[str, str]:
    return {name: MASK if secret_key(name) else value for name, value in values.items()}


def masked(config: IngestConfig) -> IngestConfig:
    """``config`` as the host may see it: secret values replaced by the mask."""
    codex = msgspec.structs.replace(config.codex, env=_mask_map(config.codex.env))
    export = msgspec.structs.replace(config.export, headers=_mask_map(config.export.headers))
    return msgspec.structs.replace(config, codex=codex, export=export)


def unmask_patch(patch: dict[str, Any], current: IngestConfig) -> dict[str, Any]:
    """``patch`` with every masked secret replaced by the stored value it stands for.

    A mask under a secret name that holds nothing is -32602 on that field:
    storing the mask itself would silently break the sidecar's login.
    """
    patch = normalize_keys(patch, IngestConfig)
    stored = {"codex.env": current.codex.env, "export.headers": current.export.headers}
    for section, name in SECRET_MAPS:
        block = patch.get(section)
        if not isinstance(block, dict) or not isinstance(block.get(name), dict):
            continue
        values: dict[Any, Any] = block[name]
        kept = stored[f"{section}.{name}"]
        restored = dict(values)
        for key, value in values.items():
            if value != MASK or not isinstance(key, str) or not secret_key(key):
                continue
            if key not in kept:
                raise ConfigError(
                    f"{section}.{name}.{key}",
                    f"is the mask {MASK!r} but no secret is stored under this name; send the real value",
                )
            restored[key] = kept[key]
        patch = {**patch, section: {**block, name: restored}}
    return patch
