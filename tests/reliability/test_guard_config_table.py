"""The config value rules and the secret mask as tables (pure: no bridge, no files)."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.config.masking import masked, unmask_patch
from bridge.config.model import IngestConfig
from bridge.config.validate import ConfigError, convert_strict
from bridge.redact import MASK


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"codex": {"binaryPath": "/usr/bin/codex"}}, None),
        ({"codex": {"binaryPath": "~/bin/codex"}}, None),
        ({"codex": {"binaryPath": "/" + "a" * 5000}}, "codex.binaryPath"),
        ({"codex": {"binaryPath": "/" + "a" * 256}}, "codex.binaryPath"),  # one component past NAME_MAX
        ({"codex": {"binaryPath": "codex"}}, "codex.binaryPath"),
        ({"codex": {"binaryPath": ""}}, "codex.binaryPath"),
        ({"codex": {"binaryPath": "/bin/co\u0000dex"}}, "codex.binaryPath"),
        ({"codex": {"home": "/home/u/.codex"}}, None),
        ({"codex": {"home": "rel"}}, "codex.home"),
        ({"codex": {"socketPath": "/run/\u202ecodex.sock"}}, "codex.socketPath"),
        ({"codex": {"args": ["app-server", "--listen", "stdio://"]}}, None),
        ({"codex": {"args": ["ok", "bad\nline"]}}, "codex.args[1]"),
        ({"codex": {"args": ["x"] * 257}}, "codex.args"),
        ({"codex": {"args": ["y" * 8193]}}, "codex.args[0]"),
        ({"codex": {"env": {"RUST_LOG": "info", "_X.y-z": "1"}}}, None),
        ({"codex": {"env": {"": "1"}}}, "codex.env"),
        ({"codex": {"env": {"BAD NAME": "1"}}}, "codex.env"),
        ({"codex": {"env": {"OK": "\u0007"}}}, "codex.env.OK"),
        ({"otlpReceiver": {"host": "127.0.0.1"}}, None),
        ({"otlpReceiver": {"host": "127.3.2.1"}}, None),
        ({"otlpReceiver": {"host": "::1"}}, None),
        ({"otlpReceiver": {"host": "localhost"}}, None),
        ({"otlpReceiver": {"host": "0.0.0.0"}}, "otlpReceiver.host"),
        ({"otlpReceiver": {"host": "::"}}, "otlpReceiver.host"),
        ({"otlpReceiver": {"host": "192.168.1.2"}}, "otlpReceiver.host"),
        ({"otlpReceiver": {"host": "\u202e\u0000"}}, "otlpReceiver.host"),
        ({"otlpReceiver": {"host": ""}}, "otlpReceiver.host"),
        ({"export": {"endpoint": "http://127.0.0.1:4318"}}, None),
        ({"export": {"endpoint": "ftp://x"}}, "export.endpoint"),
        ({"export": {"endpoint": "http://"}}, "export.endpoint"),
        ({"export": {"endpoint": "http://127.0.0.1:99999"}}, "export.endpoint"),
        ({"export": {"headers": {"Authorization": "Bearer abc", "x-a": "b"}}}, None),
        ({"export": {"headers": {"bad:name": "v"}}}, "export.headers"),
        ({"export": {"headers": {"x-a": "v\r\nInjected: 1"}}}, "export.headers.x-a"),
        ({"transcript": {"path": "/tmp/t.jsonl"}}, None),
        ({"transcript": {"path": "t.jsonl"}}, "transcript.path"),
        ({"appServerAuthMode": "api\u0000key"}, "appServerAuthMode"),
    ],
)
def test_config_value_rules(value: dict[str, Any], field: str | None) -> None:
    if field is None:
        convert_strict(value, IngestConfig)
        return
    with pytest.raises(ConfigError) as caught:
        convert_strict(value, IngestConfig)
    assert caught.value.field == field, caught.value


def test_a_problem_never_quotes_the_value() -> None:
    secret = "sk-" + "s" * 9000
    with pytest.raises(ConfigError) as caught:
        convert_strict({"codex": {"env": {"OPENAI_API_KEY": secret}}}, IngestConfig)
    assert "sss" not in str(caught.value)


STORED = convert_strict(
    {
        "codex": {"env": {"OPENAI_API_KEY": "sk-stored-0123456789", "RUST_LOG": "info"}},
        "export": {"headers": {"Authorization": "Bearer stored", "x-tenant": "t"}},
    },
    IngestConfig,
)


def test_secret_values_are_masked_by_the_redaction_rule() -> None:
    shown = masked(STORED)
    assert shown.codex.env == {"OPENAI_API_KEY": MASK, "RUST_LOG": "info"}
    assert shown.export.headers == {"Authorization": MASK, "x-tenant": "t"}
    assert STORED.codex.env["OPENAI_API_KEY"] == "sk-stored-0123456789"  # the stored config is untouched


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        # the mask keeps the stored secret
        ({"codex": {"env": {"OPENAI_API_KEY": MASK}}}, {"codex": {"env": {"OPENAI_API_KEY": "sk-stored-0123456789"}}}),
        ({"export": {"headers": {"Authorization": MASK}}}, {"export": {"headers": {"Authorization": "Bearer stored"}}}),
        # a real value replaces it
        ({"codex": {"env": {"OPENAI_API_KEY": "sk-new"}}}, {"codex": {"env": {"OPENAI_API_KEY": "sk-new"}}}),
        # the mask under a name that is not secret is just text
        ({"codex": {"env": {"RUST_LOG": MASK}}}, {"codex": {"env": {"RUST_LOG": MASK}}}),
        # names are matched exactly: a mask with nothing stored under its name is refused
        ({"export": {"headers": {"authorization": MASK}}}, ConfigError),
        # snake_case spellings of declared fields are understood
        ({"retention_days": 3}, {"retentionDays": 3}),
    ],
)
def test_writing_the_mask_back(patch: dict[str, Any], expected: Any) -> None:
    if expected is ConfigError:
        with pytest.raises(ConfigError) as caught:
            unmask_patch(patch, STORED)
        assert caught.value.field == "export.headers.authorization"
        return
    assert unmask_patch(patch, STORED) == expected
