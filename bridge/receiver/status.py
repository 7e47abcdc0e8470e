"""What the receiver reports: its status (``get_otlp_receiver_status``), counters and ``runtime.json``.

The status goes to the host as ``otel-receiver-status`` notifications;
``<dataDir>/runtime.json`` tells ``capture-bridge claude-env`` (and anyone
else on the machine) where a running bridge listens.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import msgspec

from bridge.receiver import auth

NOTIFICATION = "otel-receiver-status"
State = Literal["listening", "stopped", "error"]


class ReceiverStatus(msgspec.Struct, rename="camel", kw_only=True):
    """``get_otlp_receiver_status`` (docs/protocol.md §3.7). ``accepted``/``rejected`` count requests."""

    state: State
    endpoint: str | None
    header_name: str
    last_batch_at_iso: str | None
    accepted: int
    rejected: int
    message: str | None
    enabled: bool
    records_stored: int
    records_duplicate: int
    records_rejected: int
    records_discarded: int


class Counters(msgspec.Struct):
    accepted: int = 0
    rejected: int = 0
    records_stored: int = 0
    records_duplicate: int = 0
    records_rejected: int = 0
    records_discarded: int = 0
    storage_refused: int = 0  # requests answered 503 because the store could not take them
    decoder_refused: int = 0  # requests answered 503 because the decoder process could not take them
    last_batch_at_iso: str | None = None


def client_host(host: str) -> str:
    """The address a local client should use for a bind address (wildcards mean loopback)."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def write_runtime(path: Path, state: State, endpoint: str | None, now_iso: str) -> None:
    """Record the receiver's state in ``runtime.json`` (atomic, 0600), keeping this process's other keys."""
    from bridge.config.store import atomic_write

    data: dict[str, Any] = {}
    try:
        old = msgspec.json.decode(path.read_bytes())
        if isinstance(old, dict) and old.get("pid") == os.getpid():
            data = old
    except (OSError, msgspec.DecodeError):
        pass
    data["pid"] = os.getpid()
    data["updatedAtIso"] = now_iso
    data["otlpReceiver"] = {"state": state, "endpoint": endpoint, "headerName": auth.HEADER_NAME}
    atomic_write(path, msgspec.json.encode(data) + b"\n", mode=0o600)
