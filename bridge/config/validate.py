"""Strict conversion of JSON data into msgspec types, with errors naming fields.

The runbook spells params in snake_case (``dry_run``) while Tauri sends
camelCase (``dryRun``): :func:`normalize_keys` maps the former onto the latter,
guided by the target type, so free-form maps (``codex.env``) keep their keys.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any, TypeVar

import msgspec
from msgspec import inspect as mi

T = TypeVar("T")

_PATH_RE = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_UNKNOWN_RE = re.compile(r"^Object contains unknown field `(?P<name>[^`]+)`")
# "leaf: problem" from a __post_init__; the leaf may carry an index or a map key ("args[3]", "env.HOME").
_LEAF_RE = re.compile(r"^(?P<leaf>[A-Za-z][A-Za-z0-9]*(?:\[\d+\]|\.[!#$%&'*+.^_`|~0-9A-Za-z-]+)?): ")
_MISSING_RE = re.compile(r"^Object missing required field `(?P<name>[^`]+)`")


class ConfigError(ValueError):
    """A value that does not fit its type; ``field`` is the dotted path."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}" if field else problem)
        self.field = field
        self.problem = problem


def _dotted(path: str) -> str:
    # "$.codex.args[0]" -> "codex.args[0]"
    return path.lstrip(".")


def explain(exc: msgspec.ValidationError) -> ConfigError:
    """Turn msgspec's message into (dotted field, problem)."""
    text = str(exc)
    path = ""
    m = _PATH_RE.search(text)
    if m:
        path = _dotted(m.group("path"))
        text = text[: m.start()]
    m_unknown = _UNKNOWN_RE.match(text)
    if m_unknown:
        name = m_unknown.group("name")
        field = f"{path}.{name}" if path else name
        return ConfigError(field, "is not a known name")
    m_missing = _MISSING_RE.match(text)
    if m_missing:
        name = m_missing.group("name")
        field = f"{path}.{name}" if path else name
        return ConfigError(field, "is required")
    m_leaf = _LEAF_RE.match(text)
    if m_leaf:  # a __post_init__ check names its own field: "leaf: problem"
        leaf = m_leaf.group("leaf")
        return ConfigError(f"{path}.{leaf}" if path else leaf, text[m_leaf.end() :])
    return ConfigError(path, text[0].lower() + text[1:] if text else "is invalid")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def _normalize(value: Any, info: Any) -> Any:
    if isinstance(info, mi.UnionType):
        for member in info.types:
            if isinstance(member, mi.StructType) and isinstance(value, dict):
                return _normalize(value, member)
        return value
    if isinstance(info, mi.StructType) and isinstance(value, dict):
        fields = {f.encode_name: f.type for f in info.fields}
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = key
            if isinstance(key, str) and key not in fields and "_" in key:
                candidate = _camel(key)
                if candidate in fields:
                    name = candidate
            sub = fields.get(name)
            out[name] = _normalize(item, sub) if sub is not None else item
        return out
    if isinstance(info, (mi.ListType, mi.VarTupleType)) and isinstance(value, list):
        return [_normalize(v, info.item_type) for v in value]
    return value


@cache
def _type_info(tp: Any) -> Any:
    """msgspec's description of ``tp``: built once a type (~0.1 ms), not for every request's params."""
    return mi.type_info(tp)


def normalize_keys(value: Any, tp: Any) -> Any:
    """Rename snake_case keys to the camelCase names ``tp`` declares, at any depth."""
    if not value:  # nothing to rename (most commands come with no params)
        return value
    return _normalize(value, _type_info(tp))


def convert_strict(value: Any, tp: type[T]) -> T:
    """``msgspec.convert`` with snake_case accepted and errors as :class:`ConfigError`."""
    try:
        return msgspec.convert(normalize_keys(value, tp), tp)
    except msgspec.ValidationError as exc:
        raise explain(exc) from None
