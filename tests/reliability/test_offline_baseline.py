"""The recorded status (``capture-bridge status`` with no bridge running) finds the newest baseline record in
the telemetry store, where the decoder process writes it, as well as in the main store of older bridges."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bridge.config.paths import DataDir
from bridge.receiver import sink
from bridge.receiver.decode import Format, Signal
from bridge.receiver.prepare import prepare
from bridge.reliability.offline import read_recorded
from bridge.store.db import Database
from bridge.store.schema import TELEMETRY_MIGRATIONS
from tests.receiver.payloads import claude_logs


def store_at(db: Database, received_at_ms: int, *sequences: int) -> None:
    body = claude_logs(*sequences).SerializeToString()
    prepared = prepare(Signal.LOGS, Format.PROTOBUF, body, gzipped=False, limit=1 << 20,
                       received_at_ms=received_at_ms, storing=True)  # fmt: skip
    assert sink.store(db, prepared).new == len(sequences)


def older_bridges_row(conn: sqlite3.Connection) -> None:
    conn.execute(
        "INSERT INTO otel_records (dedup_key, signal, provider, attributes, resource, detail, received_at_ms) "
        "VALUES ('claude:s:1', 'log', 'claude_code', '{}', '{}', '{}', 1000)"
    )


def test_the_newest_baseline_record_is_read_from_the_telemetry_store(tmp_path: Path) -> None:
    data = DataDir(tmp_path)
    main = Database(data.database)
    main.write(older_bridges_row)  # what an older bridge stored in the main store
    main.close()
    assert read_recorded(data, 0).last_baseline_ms == 1_000
    telemetry = Database(data.telemetry, migrations=TELEMETRY_MIGRATIONS)
    store_at(telemetry, 5_000, 2, 3)
    telemetry.close()
    assert read_recorded(data, 0).last_baseline_ms == 5_000
