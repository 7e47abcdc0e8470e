"""Where the enrichment export goes: endpoint resolution and the own-receiver refusal (pure).

:func:`resolve` turns ``export.endpoint`` (+ ``export.headers``), else the
standard ``OTEL_EXPORTER_OTLP_*`` variables, into a :class:`Plan`;
:func:`own_receiver_refusal` refuses a target that is the bridge's own OTLP
receiver (exporting there would loop). Nothing here does I/O.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Literal

import msgspec

from bridge.redact import redact_text

Signal = Literal["traces", "logs"]
SIGNALS: tuple[Signal, ...] = ("traces", "logs")
Origin = Literal["config", "env"]
State = Literal["off", "on", "refused", "invalid"]

ENV_ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
ENV_HEADERS = "OTEL_EXPORTER_OTLP_HEADERS"
ENV_PROTOCOL = "OTEL_EXPORTER_OTLP_PROTOCOL"
ENV_TIMEOUT = "OTEL_EXPORTER_OTLP_TIMEOUT"
DEFAULT_TIMEOUT_S = 10.0
_SUPPORTED_PROTOCOLS = ("", "http/protobuf", "http/json")  # we always send protobuf; an HTTP port takes both


def _signal_env(signal: Signal, what: str) -> str:
    return f"OTEL_EXPORTER_OTLP_{signal.upper()}_{what}"


class SignalTarget(msgspec.Struct, frozen=True):
    url: str
    headers: tuple[tuple[str, str], ...] = ()


class ExportTarget(msgspec.Struct, frozen=True):
    """Where batches go; ``endpoint`` is the shown (credential-free) form."""

    origin: Origin
    endpoint: str
    traces: SignalTarget | None
    logs: SignalTarget | None
    timeout_s: float = DEFAULT_TIMEOUT_S

    def for_signal(self, signal: Signal) -> SignalTarget | None:
        return self.traces if signal == "traces" else self.logs


class Plan(msgspec.Struct, frozen=True):
    """The outcome of resolving config, environment and the own receiver."""

    state: State
    target: ExportTarget | None = None
    reason: str | None = None


def shown_url(url: str) -> str:
    """``url`` without user info, query or fragment: safe for logs and status."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:
        return redact_text(url.split("?", 1)[0])
    return redact_text(urllib.parse.urlunsplit((parts.scheme, host + port, parts.path, "", "")))


def signal_url(base: str, signal: Signal) -> str:
    """``<base>/v1/<signal>``; a base that already names a signal path is reduced to its root."""
    root = base.rstrip("/")
    for known in SIGNALS:
        if root.endswith(f"/v1/{known}"):
            root = root[: -len(f"/v1/{known}")]
    return f"{root}/v1/{signal}"


def parse_headers(text: str) -> tuple[tuple[str, str], ...]:
    """The ``k=v,k2=v2`` (URL-encoded) form of ``OTEL_EXPORTER_OTLP_HEADERS``; bad pairs are skipped."""
    out: list[tuple[str, str]] = []
    for pair in text.split(","):
        if "=" not in pair:
            continue
        key, value = pair.split("=", 1)
        key = urllib.parse.unquote(key).strip()
        if key:
            out.append((key, urllib.parse.unquote(value).strip()))
    return tuple(out)


def _valid_url(url: str) -> str | None:
    """Why ``url`` cannot be an OTLP/HTTP endpoint, or None."""
    try:
        parts = urllib.parse.urlsplit(url)
        _ = parts.port
    except ValueError as exc:
        return f"{shown_url(url)} is not a valid URL ({exc})"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{shown_url(url)} is not an http:// or https:// URL"
    return None


def _timeout(env: Mapping[str, str]) -> float:
    raw = env.get(ENV_TIMEOUT, "").strip()
    try:
        ms = float(raw) if raw else DEFAULT_TIMEOUT_S * 1000
    except ValueError:
        ms = DEFAULT_TIMEOUT_S * 1000
    return max(0.5, min(ms / 1000, 60.0))


def resolve(endpoint: str | None, headers: Mapping[str, str], env: Mapping[str, str]) -> Plan:
    """The export target: ``export.endpoint`` (+ ``export.headers``), else the standard env vars, else off.

    Pure: reads only its arguments.
    """
    timeout = _timeout(env)
    if endpoint:
        bad = _valid_url(endpoint)
        if bad:
            return Plan("invalid", reason=f"export.endpoint: {bad}")
        pairs = tuple(headers.items())
        return Plan(
            "on",
            ExportTarget(
                "config",
                shown_url(endpoint),
                SignalTarget(signal_url(endpoint, "traces"), pairs),
                SignalTarget(signal_url(endpoint, "logs"), pairs),
                timeout,
            ),
        )
    base = env.get(ENV_ENDPOINT, "").strip()
    common_headers = parse_headers(env.get(ENV_HEADERS, ""))
    per_signal: dict[Signal, SignalTarget | None] = {}
    for signal in SIGNALS:
        protocol = env.get(_signal_env(signal, "PROTOCOL"), env.get(ENV_PROTOCOL, "")).strip().lower()
        specific = env.get(_signal_env(signal, "ENDPOINT"), "").strip()
        url = specific or (signal_url(base, signal) if base else "")
        if not url:
            per_signal[signal] = None
            continue
        if protocol not in _SUPPORTED_PROTOCOLS:
            return Plan(
                "invalid",
                reason=f"{ENV_PROTOCOL}={protocol} is not supported: the bridge exports OTLP/HTTP (http/protobuf)",
            )
        bad = _valid_url(url)
        if bad:
            name = _signal_env(signal, "ENDPOINT") if specific else ENV_ENDPOINT
            return Plan("invalid", reason=f"{name}: {bad}")
        extra = parse_headers(env.get(_signal_env(signal, "HEADERS"), ""))
        merged = dict(common_headers)
        merged.update(extra)
        per_signal[signal] = SignalTarget(url, tuple(merged.items()))
    traces, logs = per_signal["traces"], per_signal["logs"]
    if traces is None and logs is None:
        return Plan("off", reason="no export.endpoint and no OTEL_EXPORTER_OTLP_ENDPOINT: export is off")
    shown = shown_url(base) if base else shown_url((traces or logs).url)  # type: ignore[union-attr]
    return Plan("on", ExportTarget("env", shown, traces, logs, timeout))


_WILDCARD = frozenset({"0.0.0.0", "::", ""})


def is_local(host: str) -> bool:
    """Whether ``host`` names this machine (loopback, ``localhost`` or a wildcard)."""
    h = host.strip("[]").lower()
    return h in _WILDCARD or h in ("localhost", "::1", "ip6-localhost") or h.startswith("127.")


def _host_port(url: str) -> tuple[str, int] | None:
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None
    return (parts.hostname or "").lower(), port


def same_listener(a: tuple[str, int], b: tuple[str, int]) -> bool:
    """Whether two host:port pairs may name the same local listener."""
    if a[1] != b[1]:
        return False
    ha, hb = a[0].strip("[]").lower(), b[0].strip("[]").lower()
    return ha == hb or (is_local(ha) and is_local(hb)) or ha in _WILDCARD or hb in _WILDCARD


def own_receiver_refusal(target: ExportTarget, receivers: Sequence[tuple[str, int]]) -> str | None:
    """Why ``target`` is refused (it is the bridge's own OTLP receiver: a loop), or None."""
    for signal in SIGNALS:
        sig = target.for_signal(signal)
        if sig is None:
            continue
        where = _host_port(sig.url)
        if where is None:
            continue
        for receiver in receivers:
            if same_listener(where, receiver):
                return (
                    f"the export endpoint {shown_url(sig.url)} is the bridge's own OTLP receiver "
                    f"({receiver[0]}:{receiver[1]}); exporting there would loop, so export is refused. "
                    "Point export.endpoint at another collector."
                )
    return None


def receiver_addresses(host: str, port: int, enabled: bool, runtime_endpoint: str | None) -> list[tuple[str, int]]:
    """The own receiver's configured and actually bound addresses."""
    out: list[tuple[str, int]] = []
    if enabled and port:
        out.append((host.lower(), port))
    if runtime_endpoint:
        bound = _host_port(runtime_endpoint)
        if bound is not None:
            out.append(bound)
    return out
