"""Value rules of the ingest config that types alone cannot say (pure, table-tested).

Every value is checked before it is stored, so nothing that would later fail
to apply (a path no system call takes, a receiver host off the loopback, a
control character that would corrupt a header or an argv) reaches
``config.json``. Each check raises ``ValueError("<leaf>: <problem>")`` from a
struct's ``__post_init__``, which :func:`bridge.config.validate.explain` turns
into the dotted field. Problems never quote the value (it may be a secret).
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

MAX_PATH = 4096  # PATH_MAX
MAX_NAME = 255  # NAME_MAX, per path component
MAX_TEXT = 8192  # an argument, an env value, a header value
MAX_KEY = 256  # an env name, a header name
MAX_ITEMS = 256  # args, env entries, headers
MAX_URL = 2048
MAX_HOST = 253

# Invisible reorderers and separators that make a value read differently from what it is.
_FORMAT_CONTROLS = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u2028\u2029\ufeff")
ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
HEADER_NAME_RE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def control_position(value: str) -> int | None:
    """The index of the first control, bidi-format or surrogate character, else ``None``."""
    for index, char in enumerate(value):
        if char in _FORMAT_CONTROLS or unicodedata.category(char) in ("Cc", "Cs"):
            return index
    return None


def text(leaf: str, value: str, limit: int = MAX_TEXT) -> None:
    """A plain value: at most ``limit`` characters, no control characters."""
    if len(value) > limit:
        raise ValueError(f"{leaf}: is {len(value)} characters long; at most {limit} are allowed")
    bad = control_position(value)
    if bad is not None:
        raise ValueError(
            f"{leaf}: has a control or invisible formatting character (U+{ord(value[bad]):04X}) at position {bad}"
        )


def path(leaf: str, value: str) -> None:
    """An absolute path (``~/`` allowed): no control characters, within PATH_MAX and NAME_MAX."""
    text(leaf, value, MAX_PATH)
    if not value.strip():
        raise ValueError(f"{leaf}: is empty; give an absolute path or leave it null")
    if not (value.startswith("/") or value == "~" or value.startswith("~/")):
        raise ValueError(f"{leaf}: must be an absolute path (starting with / or ~/)")
    longest = max((len(part.encode()) for part in value.split("/")), default=0)
    if longest > MAX_NAME:
        raise ValueError(f"{leaf}: has a path component of {longest} bytes; at most {MAX_NAME} are allowed")


def strings(leaf: str, values: Sequence[str], limit: int = MAX_TEXT) -> None:
    if len(values) > MAX_ITEMS:
        raise ValueError(f"{leaf}: has {len(values)} entries; at most {MAX_ITEMS} are allowed")
    for index, value in enumerate(values):
        text(f"{leaf}[{index}]", value, limit)


def named_values(leaf: str, values: Mapping[str, str], name_re: re.Pattern[str], what: str) -> None:
    """``codex.env`` / ``export.headers``: well-formed names, plain values (named in the field)."""
    if len(values) > MAX_ITEMS:
        raise ValueError(f"{leaf}: has {len(values)} entries; at most {MAX_ITEMS} are allowed")
    for name, value in values.items():
        if len(name) > MAX_KEY or not name_re.fullmatch(name):
            shown = name[:40] if control_position(name[:40]) is None else "a name with a control character"
            raise ValueError(
                f"{leaf}: {shown!r} is not a valid {what} name ({name_re.pattern}, at most {MAX_KEY} characters)"
            )
        text(f"{leaf}.{name}", value)


def loopback_host(leaf: str, value: str) -> None:
    """The receiver binds only the loopback: ``localhost``, 127.0.0.0/8 or ``::1``."""
    text(leaf, value, MAX_HOST)
    if value.strip().lower() == "localhost":
        return
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        address = None
    if address is None or not address.is_loopback:
        raise ValueError(f"{leaf}: must be a loopback address (127.0.0.1, another 127.x.y.z, ::1 or localhost)")


def url(leaf: str, value: str) -> None:
    text(leaf, value, MAX_URL)
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"{leaf}: must be an http:// or https:// URL")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        raise ValueError(f"{leaf}: is not a well-formed URL") from None
    if not parts.hostname:
        raise ValueError(f"{leaf}: has no host")
