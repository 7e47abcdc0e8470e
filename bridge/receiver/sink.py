"""Storing received records in the telemetry store: INSERT OR IGNORE on the dedup key, a chunk a transaction.

A redelivered record hits the UNIQUE ``dedup_key`` and is counted as a
duplicate instead of being stored twice. The rows come redacted and encoded
from :mod:`bridge.receiver.prepare` (docs/protocol.md §7); a row's resource is
stored once in ``otel_resources`` and the row names it by id. Every function is
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

# `resource` is the column rows before telemetry migration 3 kept their resource in: '' in later rows.
_INSERT = (
    f"INSERT OR IGNORE INTO otel_records ({', '.join(COLUMNS)}, resource, resource_id) "
    f"VALUES ({', '.join('?' for _ in COLUMNS)}, '', ?)"
)
_NEW_RESOURCE = "INSERT OR IGNORE INTO otel_resources (resource) VALUES (?)"
_RESOURCE_ID = "SELECT id FROM otel_resources WHERE resource = ?"
CHUNK_ROWS = 500  # rows per transaction: a usual request (an exporter's batch) is one


def _with_resource_ids(conn: sqlite3.Connection, rows: Sequence[Row]) -> list[Row]:
    """``rows`` with each resource's JSON (a row's last value) replaced by its ``otel_resources`` id.

    A request usually has one resource for all its records, so this is two statements a chunk;
    the ids are looked up in the transaction that uses them, so nothing cached can outlive a
    rolled-back insert or a store replaced after damage.
    """
    ids: dict[str, int] = {}
    for resource in {row[-1] for row in rows}:
        conn.execute(_NEW_RESOURCE, (resource,))
        ids[resource] = conn.execute(_RESOURCE_ID, (resource,)).fetchone()[0]
    return [(*row[:-1], ids[row[-1]]) for row in rows]


def store_new_rows(db: Database, rows: Sequence[Row]) -> list[int]:
    """Insert ``rows`` in one transaction; returns the indexes of the rows that were new (not redeliveries).

    Usually every row is new, and the count of rows the insert changed says so: nothing is looked up.
    Otherwise the rows above the largest id before the insert are the new ones (an ``INTEGER PRIMARY
    KEY`` without AUTOINCREMENT takes the largest id + 1, and under the write lock nothing else inserts
    meanwhile). A key twice in one request is stored once, the first time.
    """
    if not rows:
        return []

    def write(conn: sqlite3.Connection) -> list[int]:
        (last,) = conn.execute("SELECT coalesce(max(id), 0) FROM otel_records").fetchone()
        named = _with_resource_ids(conn, rows)
        changes = conn.total_changes
        conn.executemany(_INSERT, named)
        if conn.total_changes - changes == len(rows):
            return list(range(len(rows)))
        fresh = {key for (key,) in conn.execute("SELECT dedup_key FROM otel_records WHERE id > ?", (last,))}
        new: list[int] = []
        for i, row in enumerate(rows):
            if row[0] in fresh:
                fresh.discard(row[0])  # a key's later copies in the request were ignored
                new.append(i)
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
