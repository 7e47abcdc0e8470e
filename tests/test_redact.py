"""Redaction rules of docs/protocol.md §7."""

from __future__ import annotations

from typing import Any

import msgspec
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


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("psql postgres://app:s3cr3t-pw@db.internal:5432/main", "psql postgres://app:[REDACTED]@db.internal:5432/main"),
        ("clone https://bot:ghp_abc123@git.example.invalid/x.git", "clone https://bot:[REDACTED]@git.example.invalid/x.git"),
        ("ssh://git@github.example.invalid:22/repo and http://[::1]:8080/a", None),  # no password: unchanged
        ("see https://example.invalid/a:b@c", None),  # ':' and '@' in the path, not in the user info
    ],
)
def test_the_password_of_a_urls_user_info_is_masked(text: str, masked: str | None) -> None:
    assert redact_text(text) == (masked or text)
    assert redact({"output": text}) == {"output": masked or text}


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


def _run(steps: Any) -> bytes:
    while True:
        try:
            next(steps)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]


def test_large_json_is_redacted_a_piece_at_a_time_to_the_same_value() -> None:
    import msgspec

    from bridge.redact import PIECE_BYTES, redacted_json

    rows = [{"n": n, "text": f"line {n} " + "x" * 200, "inputTokens": n} for n in range(2000)]
    rows[10]["text"] = "auth: Bearer abc.def.ghi"
    rows[500]["password"] = "hunter2"
    rows[501]["refreshToken"] = None
    rows[1999]["nested"] = [{"cookie": {"a": 1}}, "https://x.example/login?code=1"]
    value = {"data": rows, "clientSecret": "s", "big": ["y" * 100] * 1000, "empty": {}, "none": None}
    raw = msgspec.json.encode(value)
    assert len(raw) > PIECE_BYTES
    out = _run(redacted_json(raw))
    assert msgspec.json.decode(out) == redact(value)
    assert b"hunter2" not in out and b"abc.def" not in out and b"code=1" not in out


def test_parts_with_nothing_to_mask_keep_their_bytes() -> None:
    from bridge.redact import PIECE_BYTES, redacted_json

    clean = b'{"a" :  [1, 2,  3]}'  # spacing as it came
    body = b'{"rows": [' + b",".join([clean] * (PIECE_BYTES // len(clean) + 10)) + b'], "apiKey": "k"}'
    out = _run(redacted_json(body))
    assert out.startswith(b'{"rows":[' + clean + b"," + clean)
    assert out.endswith(b'"apiKey":"' + MASK.encode() + b'"}')


@pytest.mark.parametrize(
    "raw",
    [b'{"api\\u005fkey": "k"}', b'{"x": "B\\u0065arer abc"}', b'{"u": "https:\\/\\/h\\/login?code=1"}'],
)
def test_escaped_json_never_passes_as_clean(raw: bytes) -> None:
    import msgspec

    from bridge.redact import needs_redaction

    assert needs_redaction(raw)
    assert redact(msgspec.json.decode(raw)) != msgspec.json.decode(raw)  # it did need masking


TEXTS = [
    "plain words", "sk-abcdefgh12345678", "SK-ABCDEFGH12345678", "Bearer abc.def", "BEARER abc.def", "bearer x",
    "eyJhbGciOi.eyJzdWIi.sig", "EYJ.a.b", "postgres://app:pw@db/x", "https://auth.example/login?code=9",
    "HTTPS://AUTH.EXAMPLE/LOGIN?CODE=9", "a://b", "earer", "sk-", "ends with sk-abcdefgh",
]  # fmt: skip


@pytest.mark.parametrize("text", TEXTS)
def test_text_said_clean_is_text_redact_leaves_alone(text: str) -> None:
    """The fast scan may be wrong only one way: whatever redact_text would mask is never called clean."""
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue

    from bridge.redact import text_needs_redaction

    protobuf = AnyValue(string_value=text).SerializeToString()
    as_json = msgspec.json.encode({"v": text})
    escaped = msgspec.json.encode({"v": text}).replace(b"/", b"\\/")  # as some encoders write slashes
    if redact_text(text) != text:
        assert text_needs_redaction(protobuf, json=False)
        assert text_needs_redaction(as_json) and text_needs_redaction(escaped)
    if text in ("plain words", "SK-ABCDEFGH12345678", "BEARER abc.def", "EYJ.a.b"):  # case matters to redact_text
        assert redact_text(text) == text and not text_needs_redaction(protobuf, json=False)


def test_terminal_escapes_alone_do_not_make_json_suspect() -> None:
    from bridge.redact import needs_redaction

    assert not needs_redaction(b'{"aggregatedOutput": "\\u001b[32mok\\u001b[0m"}')


def test_text_without_anything_to_mask_leaves_only_keys_to_check() -> None:
    from bridge.redact import has_secret_key, text_needs_redaction

    assert not text_needs_redaction(b"\n\x05model\x12\x06gpt-5", json=False)  # protobuf: strings as they are
    for suspect in (b"sk-abcdefgh123", b"Bearer x", b"eyJhbGc", b"http://h/login?x=1"):
        assert text_needs_redaction(b"\x12\x10" + suspect, json=False)
    for suspect in (b'"http:\\/\\/h"', b'"http:/\\/h"', b'"\\u0073k-abcdefgh123"'):  # JSON escapes spell it too
        assert text_needs_redaction(suspect)
    clean = {"model": "gpt-5", "nested": [{"inputTokens": 3}], "auth.env_codex_api_key_enabled": True}
    assert has_secret_key(clean) and redact(clean) != clean
    del clean["auth.env_codex_api_key_enabled"]
    assert not has_secret_key(clean) and redact(clean) == clean
    assert has_secret_key({"a": [{"b": {"refreshToken": None}}]})
    assert has_secret_key({"a": ({"cookie": "c"},)}) and redact({"a": ({"cookie": "c"},)}) == {"a": [{"cookie": MASK}]}
    assert not has_secret_key("plain text") and not has_secret_key([1, "two"])


def test_a_secret_key_is_found_among_names_already_seen_clean_at_any_depth() -> None:
    """Clean names are remembered (a flood repeats them); a secret one beside them is still found."""
    from bridge import redact as module
    from bridge.redact import has_secret_key

    seen = {"model.name.for.the.test": "gpt-5", "event.name.for.the.test": "codex.api_request", "the.test.ms": 12}
    assert not has_secret_key(seen)
    assert seen.keys() <= module._CLEAN_KEYS  # remembered: the next dict of these names takes one set test
    assert not has_secret_key(seen)
    assert has_secret_key({**seen, "sessionToken": "t"})
    assert has_secret_key({**seen, "inner": {**seen, "x-capture-bridge-key": "k"}})
    assert has_secret_key({**seen, "list": [seen, {"Authorization": "a"}]})
    assert not has_secret_key({**seen, "inner": {**seen}, "list": [seen, (seen,)]})
    assert not has_secret_key({1: "not a name", **seen})
