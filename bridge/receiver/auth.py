"""The receiver's shared key: generated once into ``<dataDir>/otlp.key`` (0600).

Clients send it in the ``x-capture-bridge-key`` header; it is compared in
constant time so its bytes cannot be guessed from response timing. The key
never leaves this module except to the file, to the codex overrides and to
``claude-env`` output, which exist to hand it to the telemetry senders.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from bridge import tokens

HEADER_NAME = "x-capture-bridge-key"
_KEY_RE = re.compile(r"^[A-Za-z0-9_-]{32,256}$")


def generate_key() -> str:
    """A fresh URL-safe key (256 bits): safe in HTTP headers and OTEL_EXPORTER_OTLP_HEADERS."""
    return tokens.token_urlsafe(32)


def load_or_create_key(path: Path) -> str:
    """The key in ``path``; created (or replaced when unusable) with mode 0600."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except (FileNotFoundError, UnicodeDecodeError):
        text = ""
    if _KEY_RE.match(text):
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)
        return text
    key = generate_key()
    from bridge.config.store import atomic_write

    atomic_write(path, key.encode("ascii") + b"\n", mode=0o600)
    return key


def read_key(path: Path) -> str | None:
    """The key in ``path`` when there is a usable one (for the CLI; never creates)."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text if _KEY_RE.match(text) else None


def key_matches(presented: bytes | None, expected: str) -> bool:
    """Whether the presented header value is the key, in constant time."""
    if presented is None:
        return False
    return tokens.same(presented.strip(), expected.encode("ascii"))
