"""JSON-RPC error codes and kinds of the host contract (docs/protocol.md §2).

Subsystems raise :class:`BridgeError` with one of the constructors below; the
host server turns it into ``{code, message, data: {kind, ...}}``. Messages are
sentences an operator can act on.
"""

from __future__ import annotations

from typing import Any

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
REQUEST_CANCELLED = -32800  # LSP's RequestCancelled: the host sent $/cancelRequest
OVERLOADED = -32001
SHUTTING_DOWN = -32002
SIDECAR_NOT_RUNNING = -32010
HANDSHAKE_ORDER = -32011
AUTH_NOT_CONFIRMED = -32012
KILL_SWITCH_ENGAGED = -32013
TIMEOUT = -32014
SIDECAR_SPAWN_FAILED = -32015
SIDECAR_ERROR = -32016
NOT_ALLOWED = -32017
MIGRATION_FAILED = -32020
MIGRATION_BUSY = -32021
NOTHING_TO_ROLLBACK = -32022
NOT_FOUND = -32030
APPROVAL_REJECTED = -32031
STORAGE_UNAVAILABLE = -32040

KINDS: dict[int, str] = {
    PARSE_ERROR: "parse_error",
    INVALID_REQUEST: "invalid_request",
    METHOD_NOT_FOUND: "method_not_found",
    INVALID_PARAMS: "invalid_params",
    INTERNAL_ERROR: "internal_error",
    REQUEST_CANCELLED: "request_cancelled",
    OVERLOADED: "overloaded",
    SHUTTING_DOWN: "shutting_down",
    SIDECAR_NOT_RUNNING: "sidecar_not_running",
    HANDSHAKE_ORDER: "handshake_order",
    AUTH_NOT_CONFIRMED: "auth_not_confirmed",
    KILL_SWITCH_ENGAGED: "kill_switch_engaged",
    TIMEOUT: "timeout",
    SIDECAR_SPAWN_FAILED: "sidecar_spawn_failed",
    SIDECAR_ERROR: "sidecar_error",
    NOT_ALLOWED: "not_allowed",
    MIGRATION_FAILED: "migration_failed",
    MIGRATION_BUSY: "migration_busy",
    NOTHING_TO_ROLLBACK: "nothing_to_rollback",
    NOT_FOUND: "not_found",
    APPROVAL_REJECTED: "approval_rejected",
    STORAGE_UNAVAILABLE: "storage_unavailable",
}


class BridgeError(Exception):
    """An error the host sees as a JSON-RPC error object.

    ``data`` always carries ``kind``; extra keyword arguments are added to it
    (they must already be redacted and JSON-able).
    """

    def __init__(self, code: int, message: str, *, kind: str | None = None, **data: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data: dict[str, Any] = {"kind": kind or KINDS.get(code, "internal_error"), **data}

    def to_wire(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "data": self.data}


def invalid_params(method: str, field: str, problem: str) -> BridgeError:
    """-32602 naming the method and the (dotted) field."""
    where = f" field '{field}'" if field else ""
    return BridgeError(
        INVALID_PARAMS,
        f"Invalid params for {method}:{where} {problem}".rstrip(),
        field=field,
    )


def frame_too_large(size: int, limit: int) -> BridgeError:
    return BridgeError(
        INVALID_REQUEST,
        f"Frame of {size} bytes exceeds the limit of {limit} bytes (limits.maxFrameBytes); it was discarded.",
        kind="frame_too_large",
        size=size,
        limit=limit,
    )


def storage_unavailable(data_dir: str, problem: str, kind: str) -> BridgeError:
    """-32040: the store (or a file) in the data dir cannot be written; the command changed nothing."""
    return BridgeError(
        STORAGE_UNAVAILABLE,
        f"The data dir {data_dir} cannot be written: {problem}. Nothing was changed; free space or fix the "
        "storage, then retry (the capture mode says when writes work again).",
        dataDir=data_dir,
        problem=kind,
    )
