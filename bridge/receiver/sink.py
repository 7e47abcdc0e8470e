"""Storing received records: short transactions of :data:`CHUNK_ROWS` rows, INSERT OR IGNORE on the dedup key.

A redelivered record hits the UNIQUE ``dedup_key`` and is counted as a
duplicate instead of being stored twice. Values are redacted (docs/protocol.md §7)
before they are encoded. Every function is blocking: the receiver calls them
from its worker thread so the event loop never waits on SQLite. A request's
rows are committed a chunk at a time, so the stream's capture commits, which
wait for the same write lock, never wait behind a whole request.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from bridge.receiver import decode
from bridge.receiver.decode import Format, Signal
from bridge.receiver.records import OtelRecord, extract
from bridge.redact import has_secret_key, needs_redaction, redact, text_needs_redaction
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
CHUNK_ROWS = 25  # rows per transaction: ~1 ms of holding the write lock


def _int64(value: int | None) -> int | None:
    return value if value is not None and -_INT64_MAX <= value <= _INT64_MAX else None


def _encode(value: Any) -> str:
    raw = _json.encode(value)
    if needs_redaction(raw):  # the deep walk only when the bytes hold something it could mask
        raw = _json.encode(redact(value))
    return raw.decode("utf-8")


def _encode_clean_text(value: Any) -> str:
    """:func:`_encode` for a value whose texts hold nothing to mask: only a secret key can need it."""
    return _json.encode(redact(value) if has_secret_key(value) else value).decode("utf-8")


def to_rows(records: Sequence[OtelRecord], received_at_ms: int, *, clean_text: bool = False) -> list[Row]:
    """Redacted, encoded rows ready for :func:`store_rows`.

    ``clean_text``: the request's bytes were found to hold no text ``redact`` would mask
    (``text_needs_redaction``), so only secret keys are looked for. A resource shared by
    the records of a batch is encoded once.
    """
    encode = _encode_clean_text if clean_text else _encode
    resources: dict[int, tuple[Any, str]] = {}

    def resource(value: Any) -> str:
        known = resources.get(id(value))
        if known is None or known[0] is not value:
            known = resources[id(value)] = (value, encode(value))
        return known[1]

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
            None if r.body is None else encode(r.body),
            encode(r.attributes),
            resource(r.resource),
            encode(r.detail),
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


def store_in_chunks(db: Database, rows: Sequence[Row]) -> tuple[list[int], Exception | None]:
    """:func:`store_new_rows` a :data:`CHUNK_ROWS` chunk at a time: (indexes of the new rows, the error).

    Each chunk is its own short transaction. When one fails, the chunks before it stay
    stored: their new rows are returned with the error, so the caller can still hand
    them on (a retried request finds them as duplicates).
    """
    new: list[int] = []
    for at in range(0, len(rows), CHUNK_ROWS):
        try:
            new.extend(at + i for i in store_new_rows(db, rows[at : at + CHUNK_ROWS]))
        except Exception as exc:
            return new, exc
    return new, None


@dataclass(slots=True)
class Ingested:
    """What the worker made of one request."""

    rows: int  # records decoded (each a row)
    rejected: int
    problems: str
    new: list[Any] = field(default_factory=list)  # the records newly stored
    error: Exception | None = None  # storing stopped here (the chunks before it are stored)


def ingest(
    db: Database | None, signal: Signal, fmt: Format, raw: bytes, gzipped: bool, limit: int, received_at_ms: int
) -> Ingested:
    """The worker's whole part of a request: inflate, parse, flatten, redact, encode, store (``db``: ingest on).

    The redaction walks a value only where the request's bytes hold text it could mask, or
    where a key is one whose value it masks (``text_needs_redaction``, ``has_secret_key``).
    """
    body = decode.inflate(raw, gzipped=gzipped, limit=limit)
    extracted = extract(signal, decode.parse_request(signal, fmt, body))
    records = extracted.records
    done = Ingested(len(records), extracted.rejected, extracted.error_message)
    if db is None or not records:
        return done
    rows = to_rows(records, received_at_ms, clean_text=not text_needs_redaction(body))
    new, done.error = store_in_chunks(db, rows)
    done.new = [records[i] for i in new]
    return done
