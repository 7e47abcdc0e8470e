"""Redaction rules of docs/protocol.md §7."""

from __future__ import annotations

import pytest

from bridge.redact import MASK, redact, redact_text, secret_key


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("accessToken", True), ("refreshToken", True), ("idToken", True), ("token", True), ("TOKEN", True),
        ("inputTokens", False), ("tokenUsage", False), ("input_token_count", False), ("tokens", False),
        ("clientSecret", True), ("password", True), ("apiKey", True), ("OPENAI_API_KEY", True),
        ("Authorization", True), ("set-cookie", True), ("x-capture-bridge-key", True),
        ("threadId", False), ("text", False),
    ],
)  # fmt: skip
def test_secret_keys(key: str, secret: bool) -> None:
    assert secret_key(key) is secret


def test_values_under_secret_keys_are_masked_at_any_depth() -> None:
    value = {"a": [{"apiKey": "abc", "usage": {"inputTokens": 3}}], "accessToken": None}
    assert redact(value) == {"a": [{"apiKey": MASK, "usage": {"inputTokens": 3}}], "accessToken": None}


@pytest.mark.parametrize(
    "text",
    ["key sk-abcdefgh12345 here", "Authorization: Bearer abc.def", "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig-xyz"],
)
def test_secrets_inside_text_are_masked(text: str) -> None:
    out = redact_text(text)
    assert MASK in out
    assert "sk-abcdefgh" not in out and "abc.def" not in out and "eyJzdWIi" not in out


def test_auth_url_query_is_dropped_except_in_the_auth_url_field() -> None:
    url = "https://auth.openai.com/oauth/authorize?client_id=1&state=secret"
    assert redact({"lastInfo": f"open {url}"}) == {"lastInfo": "open https://auth.openai.com/oauth/authorize"}
    assert redact({"authUrl": url}, keep_auth_url=True) == {"authUrl": url}


def test_registered_secret_values_are_masked_in_text_and_payload_checks() -> None:
    from bridge.redact import needs_redaction, register_secret

    secret = "Zq9-receiver-key-value-123456"
    assert redact_text(f"codex: -c otel.exporter={{headers={{k={secret}}}}}") != ""
    register_secret(secret)
    assert secret not in redact_text(f"stderr: bad header {secret} in -c otel.exporter")
    assert needs_redaction(f'{{"line": "{secret}"}}'.encode())
