"""The ingest config as msgspec types: the defaults of docs/protocol.md §3.7 live here.

Every struct is strict (unknown keys are rejected) and camelCase on the wire.
Validation that types cannot express happens in ``__post_init__`` so msgspec
reports it with the dotted path of the field.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from bridge.config import checks

AUTH_MODES = (
    "apikey",
    "chatgpt",
    "chatgptAuthTokens",
    "headers",
    "agentIdentity",
    "personalAccessToken",
    "bedrockApiKey",
    "bedrockAccessKeys",
)
_AUTH_BY_LOWER = {m.lower(): m for m in AUTH_MODES}


def canonical_auth_mode(value: str) -> str | None:
    """Codex's own spelling of an auth mode, matched case-insensitively."""
    return _AUTH_BY_LOWER.get(value.strip().lower())


Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
PositiveInt = Annotated[int, msgspec.Meta(ge=1)]


class _Section(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    pass


class CodexConfig(_Section):
    binary_path: str | None = None
    home: str | None = None
    args: list[str] = msgspec.field(default_factory=list)
    env: dict[str, str] = msgspec.field(default_factory=dict)
    connection: Literal["spawn", "attach"] = "spawn"
    socket_path: str | None = None
    request_timeout_ms: Annotated[int, msgspec.Meta(ge=100, le=3_600_000)] = 30_000

    def __post_init__(self) -> None:
        for leaf, value in (("binaryPath", self.binary_path), ("home", self.home), ("socketPath", self.socket_path)):
            if value is not None:
                checks.path(leaf, value)
        checks.strings("args", self.args)
        checks.named_values("env", self.env, checks.ENV_NAME_RE, "environment variable")


class ApprovalsConfig(_Section):
    timeout_ms: Annotated[int, msgspec.Meta(ge=100, le=86_400_000)] = 30_000


class LimitsConfig(_Section):
    max_frame_bytes: Annotated[int, msgspec.Meta(ge=1024, le=1 << 30)] = 16 * 1024 * 1024


class OtlpReceiverConfig(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: Port = 4318
    max_body_bytes: Annotated[int, msgspec.Meta(ge=1024, le=1 << 30)] = 16 * 1024 * 1024
    max_requests_per_second: PositiveInt = 500

    def __post_init__(self) -> None:
        checks.loopback_host("host", self.host)


class DedupConfig(_Section):
    completed_content_source: Literal["app_server_stream", "otel"] = "app_server_stream"


class ExportConfig(_Section):
    endpoint: str | None = None
    headers: dict[str, str] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.endpoint is not None:
            checks.url("endpoint", self.endpoint)
        checks.named_values("headers", self.headers, checks.HEADER_NAME_RE, "header")


class TranscriptConfig(_Section):
    path: str | None = None
    max_bytes: Annotated[int, msgspec.Meta(ge=4096)] = 64 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.path is not None:
            checks.path("path", self.path)


class IngestConfig(_Section):
    auto_ingest_enabled: bool = False
    stream_enrichment_enabled: bool = True
    stream_kill_switch: bool = False
    app_server_auth_mode: str = "chatgpt"
    codex: CodexConfig = msgspec.field(default_factory=CodexConfig)
    approvals: ApprovalsConfig = msgspec.field(default_factory=ApprovalsConfig)
    limits: LimitsConfig = msgspec.field(default_factory=LimitsConfig)
    otlp_receiver: OtlpReceiverConfig = msgspec.field(default_factory=OtlpReceiverConfig)
    dedup: DedupConfig = msgspec.field(default_factory=DedupConfig)
    export: ExportConfig = msgspec.field(default_factory=ExportConfig)
    retention_days: Annotated[int, msgspec.Meta(ge=1, le=36500)] = 30
    transcript: TranscriptConfig = msgspec.field(default_factory=TranscriptConfig)

    def __post_init__(self) -> None:
        checks.text("appServerAuthMode", self.app_server_auth_mode, 64)
        mode = canonical_auth_mode(self.app_server_auth_mode)
        if mode is None:
            raise ValueError(
                f"appServerAuthMode: unknown auth mode {self.app_server_auth_mode!r}; one of {', '.join(AUTH_MODES)}"
            )
        self.app_server_auth_mode = mode
