"""Typed results as the host sees them: the JSON shape of a msgspec Struct (or a list of them)."""

from __future__ import annotations

from typing import Any

import msgspec


def wire(value: Any) -> Any:
    """``value`` as plain JSON values, with the camelCase names the host reads."""
    return msgspec.to_builtins(value)
