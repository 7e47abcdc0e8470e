"""Redaction of secrets (CONTRACT §7), applied before anything leaves memory.

Keys (any depth, case-insensitive) that are or end with ``token`` (not counts
such as ``inputTokens``), or contain ``secret``, ``password``, ``apikey``,
``api_key``, ``authorization``, ``cookie``, or are ``x-capture-bridge-key``
have their values replaced; in every string, ``sk-…`` keys, ``Bearer …``
credentials and JWTs are masked in place, and URL query strings are dropped
from ``authUrl``-like login URLs.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

MASK = "[REDACTED]"

_KEY_PARTS = ("secret", "password", "apikey", "api_key", "authorization", "cookie")
_TEXT_RE = re.compile(
    r"sk-[A-Za-z0-9_-]{8,}"
    r"|Bearer\s+\S+"
    r"|eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*"
)
_AUTH_URL_RE = re.compile(r"(https?://[^\s\"'?]*(?:oauth|authorize|login|auth)[^\s\"'?]*)\?[^\s\"']*", re.I)


# Anything that could need masking, searched in raw JSON bytes: when none of it
# occurs, a payload can be passed on as it is (the stream's hot path).
_SUSPECT_RE = re.compile(
    rb'(?i)token"|secret|password|api_?key|authorization|cookie|x-capture-bridge-key|sk-[a-z0-9_-]{8}|bearer\s|eyJ|https?://'
)


def needs_redaction(raw: bytes) -> bool:
    """False only when raw JSON certainly holds nothing :func:`redact` would change."""
    return _SUSPECT_RE.search(raw) is not None


@lru_cache(maxsize=4096)
def secret_key(key: str) -> bool:
    """Whether a value stored under ``key`` must be masked."""
    k = key.lower()
    if k == "x-capture-bridge-key":
        return True
    if k.endswith("token"):
        return True
    return any(part in k for part in _KEY_PARTS)


def redact_text(text: str) -> str:
    if not text or not ("sk-" in text or "earer" in text or "eyJ" in text or "://" in text):
        return text
    text = _TEXT_RE.sub(MASK, text)
    return _AUTH_URL_RE.sub(r"\1", text)


def redact(value: Any, *, keep_auth_url: bool = False) -> Any:
    """A redacted copy of JSON-like ``value`` (dicts, lists, strings, scalars).

    ``keep_auth_url`` keeps a top-level ``authUrl`` whole: the one place the
    contract allows it.
    """
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            if isinstance(key, str) and secret_key(key):
                out[key] = MASK if item is not None else None
            elif keep_auth_url and key == "authUrl" and isinstance(item, str):
                out[key] = item
            else:
                out[key] = redact(item)
        return out
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value
