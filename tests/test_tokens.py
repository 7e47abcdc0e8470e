"""Tokens: random, URL-safe or hex, compared in constant time (bridge.tokens)."""

from __future__ import annotations

import re

from bridge import tokens


def test_a_urlsafe_token_holds_its_bytes_without_padding() -> None:
    key = tokens.token_urlsafe(32)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", key)  # 32 bytes: 43 base64 characters, no '='


def test_a_hex_token_holds_its_bytes() -> None:
    assert re.fullmatch(r"[0-9a-f]{8}", tokens.token_hex(4))


def test_tokens_differ_from_call_to_call() -> None:
    assert len({tokens.token_urlsafe(24) for _ in range(100)}) == 100


def test_same_compares_bytes_and_ascii_text() -> None:
    key = tokens.token_urlsafe(32)
    assert tokens.same(key, key)
    assert tokens.same(key.encode("ascii"), key.encode("ascii"))
    assert not tokens.same(key, key[:-1] + ("A" if key[-1] != "A" else "B"))
    assert not tokens.same(b"", key.encode("ascii"))
