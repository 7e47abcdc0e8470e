"""The -c overrides parse as codex's TOML and say what docs/peers.md §2 requires."""

from __future__ import annotations

import tomllib

import pytest

from bridge.receiver.codex_overrides import codex_otel_overrides


def parsed(args: list[str]) -> dict[str, object]:
    assert args[::2] == ["-c"] * (len(args) // 2)
    out: dict[str, object] = {}
    for assignment in args[1::2]:
        name, value = assignment.split("=", 1)
        out[name] = tomllib.loads(f"v = {value}")["v"]
    return out


@pytest.mark.parametrize("protocol", ["json", "binary"])
def test_overrides(protocol: str) -> None:
    args = codex_otel_overrides("http://127.0.0.1:4318/", "k3y_-", protocol=protocol)  # type: ignore[arg-type]
    values = parsed(args)
    for name, signal in [("exporter", "logs"), ("trace_exporter", "traces"), ("metrics_exporter", "metrics")]:
        assert values[f"otel.{name}"] == {
            "otlp-http": {
                "endpoint": f"http://127.0.0.1:4318/v1/{signal}",
                "protocol": protocol,
                "headers": {"x-capture-bridge-key": "k3y_-"},
            }
        }
    assert values["otel.log_user_prompt"] is True
    assert values["otel.log_agent_responses"] is True


def test_unknown_protocol_is_refused() -> None:
    with pytest.raises(ValueError):
        codex_otel_overrides("http://127.0.0.1:1", "k", protocol="grpc")  # type: ignore[arg-type]
