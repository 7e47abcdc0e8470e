"""Storing received records in the telemetry store: INSERT OR IGNORE on the dedup key, a chunk a transaction.

A redelivered record hits the UNIQUE ``dedup_key`` and is counted as a
duplicate instead of being stored twice. The rows come redacted and encoded
from :mod:`bridge.receiver.prepare` (docs/protocol.md §7). Every function is
blocking: the decoder process runs them. The telemetry store is a file of its
own (``<dataDir>/telemetry.sqlite3``), so these transactions never hold the
write lock the stream's capture commits wait for; a request is still committed
:data:`CHUNK_ROWS` rows at a time, so a huge one never holds a transaction long.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import msgspec

from bridge.receiver.prepare import COLUMNS, Prepared, Row
from bridge.receiver.records import OtelRecord
from bridge.store.db import Database

_INSERT = f"INSERT OR IGNORE INTO otel_records ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"

_KEYS_PER_SELECT = 500  # under SQLite's host-parameter limit
CHUNK_ROWS = 500  # rows per transaction: a usual request (an exporter's batch) is one


def store_new_rows(db: Database, rows: Sequence[Row]) -> list[int]:
    """Insert ``rows`` in one transaction; returns the indexes of the rows that were new (not redeliveries).

    One ``SELECT`` finds the keys already stored, one ``executemany`` inserts the rest (a key twice in
    one request is inserted once, the first time). Under the write lock nothing else inserts meanwhile.
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


class Stored(msgspec.Struct):
    """What storing one prepared request did."""

    new: int = 0  # rows newly stored (the rest were redeliveries, or not reached after an error)
    baseline: list[OtelRecord] = msgspec.field(default_factory=list)  # the baseline's part of the new rows
    error: Exception | None = None  # storing stopped here (the chunks before it are stored)


def store(db: Database, prepared: Prepared) -> Stored:
    """Store a prepared request's rows a chunk at a time (the decoder process runs it)."""
    new, error = store_in_chunks(db, prepared.rows)
    if not prepared.baseline:
        return Stored(len(new), [], error)
    fresh = set(new)
    return Stored(len(new), [record for index, record in prepared.baseline if index in fresh], error)
