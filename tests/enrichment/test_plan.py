"""Where the export goes (config, env, off) and when it is refused: pure tables."""

from __future__ import annotations

import pytest

from bridge.enrichment.targets import (
    ExportTarget,
    Plan,
    SignalTarget,
    own_receiver_refusal,
    parse_headers,
    receiver_addresses,
    resolve,
    shown_url,
    signal_url,
)


def urls(plan: Plan) -> tuple[str | None, str | None]:
    assert plan.target is not None
    t = plan.target
    return (t.traces.url if t.traces else None, t.logs.url if t.logs else None)


@pytest.mark.parametrize(
    ("endpoint", "env", "state", "origin", "traces", "logs"),
    [
        (None, {}, "off", None, None, None),
        ("http://c:4318", {}, "on", "config", "http://c:4318/v1/traces", "http://c:4318/v1/logs"),
        ("http://c:4318/otlp/", {}, "on", "config", "http://c:4318/otlp/v1/traces", "http://c:4318/otlp/v1/logs"),
        ("http://c:4318/v1/traces", {}, "on", "config", "http://c:4318/v1/traces", "http://c:4318/v1/logs"),
        # config wins over env
        ("http://c:1", {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://e:2"}, "on", "config",
         "http://c:1/v1/traces", "http://c:1/v1/logs"),
        (None, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://e:2"}, "on", "env", "http://e:2/v1/traces",
         "http://e:2/v1/logs"),
        # a signal-specific endpoint is used as is, and alone it exports only that signal
        (None, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:3/custom"}, "on", "env", "http://t:3/custom", None),
        (None, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://e:2", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://l:9/x"},
         "on", "env", "http://e:2/v1/traces", "http://l:9/x"),
        (None, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://e:2", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
         "on", "env", "http://e:2/v1/traces", "http://e:2/v1/logs"),
        (None, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://e:2", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
         "invalid", None, None, None),
        (None, {"OTEL_EXPORTER_OTLP_ENDPOINT": "e:4317"}, "invalid", None, None, None),
        (None, {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "off", None, None, None),  # no endpoint: grpc is moot
    ],
)  # fmt: skip
def test_resolve(
    endpoint: str | None, env: dict[str, str], state: str, origin: str | None, traces: str | None, logs: str | None
) -> None:
    plan = resolve(endpoint, {}, env)
    assert plan.state == state
    if state == "on":
        assert plan.target is not None and plan.target.origin == origin
        assert urls(plan) == (traces, logs)
    else:
        assert plan.target is None and plan.reason


def test_headers_from_config_and_env() -> None:
    plan = resolve("http://c:1", {"Authorization": "Bearer x"}, {"OTEL_EXPORTER_OTLP_HEADERS": "ignored=1"})
    assert plan.target is not None and plan.target.traces is not None
    assert plan.target.traces.headers == (("Authorization", "Bearer x"),)
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://e:2",
        "OTEL_EXPORTER_OTLP_HEADERS": "api-key=a%20b, x=1,broken",
        "OTEL_EXPORTER_OTLP_LOGS_HEADERS": "x=2",
    }
    plan = resolve(None, {}, env)
    assert plan.target is not None and plan.target.traces is not None and plan.target.logs is not None
    assert dict(plan.target.traces.headers) == {"api-key": "a b", "x": "1"}
    assert dict(plan.target.logs.headers) == {"api-key": "a b", "x": "2"}


def test_timeout_from_env() -> None:
    plan = resolve(None, {}, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://e:2", "OTEL_EXPORTER_OTLP_TIMEOUT": "2500"})
    assert plan.target is not None and plan.target.timeout_s == 2.5


def test_shown_url_hides_credentials() -> None:
    assert shown_url("https://user:pw@collector.example:443/otlp?token=abc") == "https://collector.example:443/otlp"
    plan = resolve("https://user:pw@c.example/otlp?k=v", {}, {})
    assert plan.target is not None and "pw" not in plan.target.endpoint and "k=v" not in plan.target.endpoint


def test_parse_headers_and_signal_url() -> None:
    assert parse_headers("") == ()
    assert parse_headers("a=1,b=x=y") == (("a", "1"), ("b", "x=y"))
    assert signal_url("http://h:1/", "logs") == "http://h:1/v1/logs"


def _target(url: str) -> ExportTarget:
    return ExportTarget("config", url, SignalTarget(signal_url(url, "traces")), SignalTarget(signal_url(url, "logs")))


@pytest.mark.parametrize(
    ("endpoint", "receivers", "refused"),
    [
        ("http://127.0.0.1:4318", [("127.0.0.1", 4318)], True),
        ("http://localhost:4318", [("127.0.0.1", 4318)], True),
        ("http://[::1]:4318", [("127.0.0.1", 4318)], True),
        ("http://127.0.0.1:4318", [("0.0.0.0", 4318)], True),
        ("http://127.0.0.1:4319", [("127.0.0.1", 4318)], False),
        ("http://collector.example:4318", [("127.0.0.1", 4318)], False),
        ("http://127.0.0.1:80", [("127.0.0.1", 80)], True),
        ("http://127.0.0.1", [("127.0.0.1", 80)], True),  # the default port counts
        ("http://127.0.0.1:4318", [], False),
    ],
)
def test_own_receiver_refusal(endpoint: str, receivers: list[tuple[str, int]], refused: bool) -> None:
    reason = own_receiver_refusal(_target(endpoint), receivers)
    assert (reason is not None) == refused
    if reason:
        assert "own OTLP receiver" in reason


def test_receiver_addresses() -> None:
    assert receiver_addresses("127.0.0.1", 4318, True, None) == [("127.0.0.1", 4318)]
    assert receiver_addresses("127.0.0.1", 4318, False, None) == []  # a disabled receiver does not hold its port
    assert receiver_addresses("127.0.0.1", 0, True, "http://127.0.0.1:39999") == [("127.0.0.1", 39999)]
