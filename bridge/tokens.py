"""Random tokens, and comparing a presented token in constant time.

The same as ``secrets.token_urlsafe``/``token_hex`` and ``hmac.compare_digest``,
without importing them at start-up: both load OpenSSL (``_hashlib``, ~2 ms of
the bridge's start before its first status), which the bridge needs only when
a token is first checked.
"""

from __future__ import annotations

import base64
import os
from typing import AnyStr


def token_urlsafe(nbytes: int) -> str:
    """``nbytes`` random bytes from the OS, as URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(os.urandom(nbytes)).rstrip(b"=").decode("ascii")


def token_hex(nbytes: int) -> str:
    """``nbytes`` random bytes from the OS, as hex."""
    return os.urandom(nbytes).hex()


def same(presented: AnyStr, expected: AnyStr) -> bool:
    """Whether two tokens are equal, in time that does not depend on where they differ."""
    import hmac  # loads OpenSSL: on the first check, not at start-up

    return hmac.compare_digest(presented, expected)
