"""Redaction of secrets (docs/protocol.md §7), applied before anything leaves memory.

Keys (any depth, case-insensitive) that are or end with ``token`` (not counts
such as ``inputTokens``), or contain ``secret``, ``password``, ``apikey``,
``api_key``, ``authorization``, ``cookie``, or are ``x-capture-bridge-key``
have their values replaced; in every string, ``sk-…`` keys, ``Bearer …``
credentials, JWTs and the passwords of URLs (``scheme://user:PASSWORD@host``)
are masked in place, and URL query strings are dropped from ``authUrl``-like
login URLs.
"""

from __future__ import annotations

import re
from collections.abc import Generator
from functools import lru_cache
from typing import Any

import msgspec

MASK = "[REDACTED]"

_KEY_PARTS = ("secret", "password", "apikey", "api_key", "authorization", "cookie")
_TEXT_RE = re.compile(
    r"sk-[A-Za-z0-9_-]{8,}"
    r"|Bearer\s+\S+"
    r"|eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*"
)
_AUTH_URL_RE = re.compile(r"(https?://[^\s\"'?]*(?:oauth|authorize|login|auth)[^\s\"'?]*)\?[^\s\"']*", re.I)
# The password of a URL's user info (``postgres://app:PASSWORD@db/x``, as agents' commands and their output
# carry them): masked, the user and the host kept.
_URL_PASSWORD_RE = re.compile(r"(://[^\s/?#@:\"']+):[^\s/?#@\"']+@")


# Anything that could need masking, looked for in lower-cased raw JSON bytes:
# when none of it occurs, a payload can be passed on as it is (the stream's hot
# path). Plain substring tests are much faster than one case-insensitive regex.
_SUSPECT = (
    b'token"', b"secret", b"password", b"apikey", b"api_key", b"authorization", b"cookie",
    b"x-capture-bridge-key", b"sk-", b"bearer", b"eyj", b"://", b":\\/\\/",
)  # fmt: skip
# A printable ASCII character written as a \u escape (``api\u005fkey``): the substring tests above
# would miss what it spells, so such JSON always takes the decoding path. Encoders do not write
# these for plain letters; ``\u001b`` (a terminal escape, common in command output) does not match.
_ESCAPED_ASCII = re.compile(rb"\\u00[2-7][0-9a-fA-F]")


# Secrets known by value (the receiver's key, which codex carries in its
# arguments and may echo on stderr): masked wherever they appear in text.
_LITERALS: set[str] = set()
_LITERAL_BYTES: tuple[bytes, ...] = ()  # the same, encoded once (looked for in raw JSON)


def register_secret(value: str) -> None:
    """Mask ``value`` wherever it appears in text from now on (at least 8 characters)."""
    global _LITERAL_BYTES
    if len(value) >= 8:
        _LITERALS.add(value)
        _LITERAL_BYTES = tuple(secret.encode() for secret in _LITERALS)


def _holds_any(data: bytes, needles: tuple[bytes, ...]) -> bool:
    # A plain loop: ``any()`` over a generator costs ~150 ns a needle more, which on a small
    # payload is more than the searches themselves.
    for needle in needles:  # noqa: SIM110 (any() over a generator is the slow path this avoids)
        if needle in data:
            return True
    return False


def registered_secrets() -> frozenset[str]:
    """The values :func:`register_secret` was given (the decoder process is told them, to mask them too)."""
    return frozenset(_LITERALS)


def needs_redaction(raw: bytes) -> bool:
    """False only when raw JSON certainly holds nothing :func:`redact` would change."""
    if _holds_any(raw.lower(), _SUSPECT):
        return True
    if b"\\u00" in raw and _ESCAPED_ASCII.search(raw):
        return True
    return _holds_any(raw, _LITERAL_BYTES)


# What redact_text could mask, as it looks for it (``_has_patterns``: case matters), in bytes whose strings
# appear as they are (a protobuf message's): when none of it occurs, only a secret key can make redact change
# a value decoded from them (see has_secret_key). JSON can also spell text with escapes: any ``\/`` (so
# ``:\/\/``) or ``\u00XX`` of a printable character takes the slow path.
_TEXT_SUSPECT = (b"sk-", b"earer", b"eyJ", b"://")
_JSON_TEXT_SUSPECT = (*_TEXT_SUSPECT, b"\\/")
_NESTED = frozenset((dict, list, tuple))
# Keys secret_key() said no to: a dict whose keys are all here needs no call per key (a telemetry
# record's ~18 attributes are the same few dozen names request after request). Bounded: emptied when full.
_CLEAN_KEYS: set[str] = set()
_CLEAN_KEYS_MAX = 4096


def text_needs_redaction(raw: bytes, *, json: bool = True) -> bool:
    """False only when no text in ``raw`` holds anything :func:`redact_text` would mask.

    ``raw`` is JSON, or (``json=False``) the bytes of a protobuf message, whose strings appear in it as
    they are: no lower-casing and no escapes to look for (a 100-record request is ~45 KB, scanned
    once a needle).
    """
    if _holds_any(raw, _JSON_TEXT_SUSPECT if json else _TEXT_SUSPECT):
        return True
    if json and b"\\u00" in raw and _ESCAPED_ASCII.search(raw):
        return True
    return _holds_any(raw, _LITERAL_BYTES)


def has_secret_key(value: Any) -> bool:
    """Whether a dict in ``value`` (at any depth) has a key whose value :func:`redact` masks.

    With text known to be clean (:func:`text_needs_redaction` false for the bytes it was
    decoded from), this alone says whether ``redact(value)`` differs from ``value``.
    """
    if isinstance(value, dict):
        if not value.keys() <= _CLEAN_KEYS:  # a set test in C: the usual dict has only known names
            for key in value:
                if isinstance(key, str):
                    if secret_key(key):
                        return True
                    if len(_CLEAN_KEYS) >= _CLEAN_KEYS_MAX:  # names that never repeat filled it: start over
                        _CLEAN_KEYS.clear()
                    _CLEAN_KEYS.add(key)
        if _NESTED.isdisjoint(map(type, value.values())):
            return False
        return any(has_secret_key(item) for item in value.values() if item.__class__ in _NESTED)
    if isinstance(value, (list, tuple)):
        return any(has_secret_key(item) for item in value if item.__class__ in _NESTED)
    return False


@lru_cache(maxsize=4096)
def secret_key(key: str) -> bool:
    """Whether a value stored under ``key`` must be masked."""
    k = key.lower()
    if k == "x-capture-bridge-key":
        return True
    if k.endswith("token"):
        return True
    return any(part in k for part in _KEY_PARTS)


def _has_patterns(text: str) -> bool:
    """Whether ``text`` holds what one of the patterns of :func:`redact_text` starts with."""
    return "sk-" in text or "earer" in text or "eyJ" in text or "://" in text


def text_may_hold_secrets(text: str) -> bool:
    """False only when :func:`redact_text` would return ``text`` unchanged (one scan for many pieces)."""
    return _has_patterns(text) or any(s in text for s in _LITERALS)


def redact_text(text: str) -> str:
    if not text:
        return text
    for secret in _LITERALS:
        if secret in text:
            text = text.replace(secret, MASK)
    if not _has_patterns(text):
        return text
    text = _TEXT_RE.sub(MASK, text)
    if "://" in text:
        text = _URL_PASSWORD_RE.sub(r"\1:" + MASK + "@", text)
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


# --- large JSON, a piece at a time ------------------------------------------------------------

PIECE_BYTES = 64 * 1024  # larger objects and arrays are taken apart before they are looked at
_MASKED = msgspec.Raw(msgspec.json.encode(MASK))
_NULL = msgspec.Raw(b"null")
_raw_object = msgspec.json.Decoder(dict[str, msgspec.Raw])
_raw_array = msgspec.json.Decoder(list[msgspec.Raw])
_encode = msgspec.json.encode
_decode = msgspec.json.decode


def redacted_json(raw: bytes) -> Generator[int, None, bytes]:
    """JSON ``raw`` with what :func:`redact` masks masked, worked out a piece at a time.

    The value is the same as ``encode(redact(decode(raw)))``, but the parts in which
    nothing can need masking (:func:`needs_redaction`) keep their bytes as they came
    (unless they hold a line break: the result is always one line, as the host's frames are),
    and an object or array over :data:`PIECE_BYTES` is split one level down (its members
    as raw bytes) instead of being decoded whole. So no single step holds the
    interpreter for long: the generator yields the number of bytes each step looked
    at, for a caller that runs it in slices (on a worker thread, between which the
    event loop runs). ``raw`` is taken to be valid JSON (a piece msgspec has parsed, as
    codex's answers are): a part with nothing to mask is not decoded again.
    """
    head = raw[:64].lstrip()[:1]
    if len(raw) <= PIECE_BYTES or head not in (b"{", b"["):
        yield len(raw)
        if not needs_redaction(raw):  # kept as it came, unless a line break in it would split the host's frame
            return raw if b"\n" not in raw and b"\r" not in raw else _encode(_decode(raw))
        return _encode(redact(_decode(raw)))
    if head == b"{":
        members = _raw_object.decode(raw)
        yield len(raw) // 16  # the split: a scan of the bytes, far cheaper than a decode
        out: dict[str, msgspec.Raw] = {}
        for key, value in members.items():
            if secret_key(key):
                out[key] = _NULL if bytes(value) == b"null" else _MASKED
            else:
                out[key] = msgspec.Raw((yield from redacted_json(bytes(value))))
        return _encode(out)
    items = _raw_array.decode(raw)
    yield len(raw) // 16
    parts = []
    for value in items:
        parts.append(msgspec.Raw((yield from redacted_json(bytes(value)))))
    return _encode(parts)
