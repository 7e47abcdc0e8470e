"""Storing received records: one transaction per request, INSERT OR IGNORE on the dedup key.

A redelivered record hits the UNIQUE ``dedup_key`` and is counted as a
duplicate instead of being stored twice. Values are redacted (docs/protocol.md §7)
before they are encoded. Both functions are blocking: the receiver calls them
from a worker thread so the event loop never waits on SQLite.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import msgspec

from bridge.receiver.records import OtelRecord
from bridge.redact import needs_redaction, redact
from bridge.store.db import Database

_INT64_MAX = (1 << 63) - 1
_json = msgspec.json.Encoder()

COLUMNS = (
    "dedup_key",
    "signal",
    "provider",
    "name",
    "conversation_id",
    "turn_id",
    "item_id",
    "call_id",
    "sequence",
    "trace_id",
    "span_id",
    "time_ns",
    "service_name",
    "scope_name",
    "body",
    "attributes",
    "resource",
    "detail",
    "received_at_ms",
)
_INSERT = f"INSERT OR IGNORE INTO otel_records ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"

Row = tuple[Any, ...]
_KEYS_PER_SELECT = 500  # under SQLite's host-parameter limit


def _int64(value: int | None) -> int | None:
    return value if value is not None and -_INT64_MAX <= value <= _INT64_MAX else None


def _encode(value: Any) -> str:
    raw = _json.encode(value)
    if needs_redaction(raw):  # the deep walk only when the bytes hold something it could mask
        raw = _json.encode(redact(value))
    return raw.decode("utf-8")


def to_rows(records: Sequence[OtelRecord], received_at_ms: int) -> list[Row]:
    """Redacted, encoded rows ready for :func:`store_rows`."""
    return [
        (
            r.dedup_key,
            r.signal,
            r.provider,
            r.name,
            r.conversation_id,
            r.turn_id,
            r.item_id,
            r.call_id,
            _int64(r.sequence),
            r.trace_id,
            r.span_id,
            _int64(r.time_ns),
            r.service_name,
            r.scope_name,
            None if r.body is None else _encode(r.body),
            _encode(r.attributes),
            _encode(r.resource),
            _encode(r.detail),
            received_at_ms,
        )
        for r in records
    ]


def store_rows(db: Database, rows: Sequence[Row]) -> int:
    """Insert ``rows`` in one transaction; returns how many were new (the rest were duplicates)."""
    if not rows:
        return 0

    def write(conn: sqlite3.Connection) -> int:
        before = conn.total_changes
        conn.executemany(_INSERT, rows)
        return conn.total_changes - before

    return db.write(write)


def store_new_rows(db: Database, rows: Sequence[Row]) -> list[int]:
    """Like :func:`store_rows`, but returns the indexes of the rows that were new (not redeliveries).

    The transaction is kept short, since the stream's capture commits wait for the same write lock: one
    ``SELECT`` finds the keys already stored, one ``executemany`` inserts the rest (a key twice in one
    request is inserted once, the first time). Under the write lock nothing else inserts meanwhile.
    """
    if not rows:
        return []
    first: dict[str, int] = {}
    for i, row in enumerate(rows):
        first.setdefault(row[0], i)
    keys = list(first)

    def write(conn: sqlite3.Connection) -> list[int]:
        stored: set[str] = set()
        for at in range(0, len(keys), _KEYS_PER_SELECT):
            chunk = keys[at : at + _KEYS_PER_SELECT]
            marks = ",".join("?" * len(chunk))
            query = f"SELECT dedup_key FROM otel_records WHERE dedup_key IN ({marks})"
            stored.update(key for (key,) in conn.execute(query, chunk))
        new = sorted(i for key, i in first.items() if key not in stored)
        conn.executemany(_INSERT, [rows[i] for i in new])
        return new

    return db.write(write)
