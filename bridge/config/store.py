"""Loading, validating, deep-merging and atomically writing ``config.json``."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Protocol

import msgspec

from bridge.config.model import IngestConfig
from bridge.config.validate import ConfigError, convert_strict

_encoder = msgspec.json.Encoder()


class ConfigSource(Protocol):
    """What a subsystem needs of the config: the current one, and saving a change (:class:`ConfigStore`)."""

    @property
    def current(self) -> IngestConfig: ...

    def update(self, patch: dict[str, Any]) -> IngestConfig: ...


def deep_merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """``patch`` over ``base``: nested objects merge, everything else replaces."""
    out = dict(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def atomic_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write via a temp file in the same directory, fsync, then rename over."""
    import tempfile  # ~6 ms of imports (random, shutil): not on the way to the first status

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


class ConfigStore:
    """The current config of a data dir; every change is validated whole first."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.current = self._load()

    def _load(self) -> IngestConfig:
        if not self.path.exists():
            return IngestConfig()
        raw = self.path.read_bytes()
        try:
            data = msgspec.json.decode(raw)
        except msgspec.DecodeError as exc:
            raise ConfigError("", f"{self.path} is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError("", f"{self.path} must hold a JSON object")
        return convert_strict(data, IngestConfig)

    def as_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = msgspec.to_builtins(self.current)
        return result

    def update(self, patch: dict[str, Any]) -> IngestConfig:
        """Deep-merge ``patch`` (camelCase or snake_case keys), validate, write atomically."""
        from bridge.config.validate import normalize_keys

        patch = normalize_keys(patch, IngestConfig)
        merged = deep_merge(self.as_dict(), patch)
        new = convert_strict(merged, IngestConfig)
        atomic_write(self.path, _encoder.encode(new) + b"\n")
        self.current = new
        return new

    def restore(self, previous: IngestConfig) -> None:
        """Put back a config that was current before (a change that failed to apply)."""
        atomic_write(self.path, _encoder.encode(previous) + b"\n")
        self.current = previous
