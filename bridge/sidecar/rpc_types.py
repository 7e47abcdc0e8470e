"""The values of the codex JSON-RPC client (:mod:`.rpc`): what it hands out and what it counts.

The callbacks it calls (notification batches, server requests, frame taps,
faults), a :class:`ProtocolFault` for a frame it could not use, its
:class:`RpcCounters` (the reliability metrics), and the errors a request ends
with when codex refuses it or the connection ends first. No I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from bridge import errors
from bridge.errors import BridgeError
from bridge.redact import redact, redact_text
from bridge.sidecar.protocol import Envelope

PREVIEW_CHARS = 256

NotificationListener = Callable[[list[Envelope]], None]
RequestHandler = Callable[[Envelope], None]
# ``tap(direction, raw)``: "in" for every frame read from codex, "out" for every frame sent (transcripts).
Tap = Callable[[str, bytes], None]


class ProtocolFault(msgspec.Struct, frozen=True):
    """A frame the client could not use (``kind``: parse_error, oversized, protocol_violation)."""

    kind: str
    reason: str
    preview: str
    size: int


FaultListener = Callable[[ProtocolFault], None]


class RpcCounters(msgspec.Struct):
    """Running totals for the reliability metrics."""

    frames: int = 0
    notifications: int = 0
    requests_sent: int = 0
    timeouts: int = 0
    protocol_errors: int = 0
    oversized_frames: int = 0
    late_responses: int = 0
    server_requests: int = 0
    server_requests_unhandled: int = 0
    unknown_notifications: dict[str, int] = msgspec.field(default_factory=dict)


def preview(raw: bytes) -> str:
    """The head of a frame, redacted, for a fault report."""
    text = raw[: PREVIEW_CHARS * 4].decode("utf-8", "replace")
    return redact_text(text)[:PREVIEW_CHARS]


def codex_error(method: str, error: Any) -> BridgeError:
    """Codex answered ``method`` with an error: -32016 with the error redacted."""
    if isinstance(error, dict):
        body = {"code": error.get("code"), "message": error.get("message"), "data": error.get("data")}
    else:
        body = {"code": None, "message": str(error), "data": None}
    safe = redact(body)
    message = safe.get("message") or "no message"
    return BridgeError(
        errors.SIDECAR_ERROR,
        f"codex app-server refused {method}: {message}",
        codexError=safe,
    )


def closed_error(method: str) -> BridgeError:
    """The connection ended before ``method`` was answered (the supervisor gives each client a better one)."""
    return BridgeError(
        errors.SIDECAR_NOT_RUNNING,
        f"codex app-server closed its connection before answering {method}; check get_codex_app_server_status.",
    )
