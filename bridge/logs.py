"""Structured logs: one JSON object a line on stderr, secrets redacted."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import msgspec

from bridge.clock import iso_seconds
from bridge.redact import redact, redact_text

_encode = msgspec.json.Encoder().encode
_STD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": iso_seconds(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact_text(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in _STD and not key.startswith("_"):
                entry[key] = redact({key: value})[key] if isinstance(value, (str, dict, list)) else value
        if record.exc_info:
            entry["exc"] = redact_text(self.formatException(record.exc_info))
        try:
            return _encode(entry).decode()
        except (TypeError, msgspec.EncodeError):
            return _encode({k: str(v) for k, v in entry.items()}).decode()


def setup(stream: Any = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(os.environ.get("CAPTURE_BRIDGE_LOG_LEVEL", "INFO").upper())
