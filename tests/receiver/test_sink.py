"""A request prepared (decoded, redacted, encoded: the decoder process's part) and stored in short transactions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bridge.receiver import prepare, sink
from bridge.receiver.decode import SIGNAL_BY_PATH, Format
from bridge.redact import MASK
from bridge.store.db import Database, StorageUnavailable
from bridge.store.schema import TELEMETRY_MIGRATIONS
from tests.receiver.payloads import SESSION, claude_event, claude_logs, codex_event, codex_logs, kv, logs_request

LOGS = SIGNAL_BY_PATH["/v1/logs"]


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of 25 rows, so a request of a few dozen records spans several transactions."""
    monkeypatch.setattr(sink, "CHUNK_ROWS", 25)


def ingest(db: Database, body: bytes) -> tuple[prepare.Prepared, sink.Stored]:
    """What the receiver does with a body: prepared (in the decoder process), then stored."""
    prepared = prepare.prepare(LOGS, Format.PROTOBUF, body, gzipped=False, limit=1 << 20, received_at_ms=1,
                               storing=True)  # fmt: skip
    return prepared, sink.store(db, prepared)


def _db(tmp_path: Path) -> Database:
    return Database(tmp_path / "telemetry.sqlite3", migrations=TELEMETRY_MIGRATIONS)


def _stored(db: Database) -> list[dict[str, Any]]:
    def read(conn: Any) -> list[dict[str, Any]]:
        cur = conn.execute("SELECT dedup_key, attributes, body FROM otel_records ORDER BY id")
        return [{"key": k, "attributes": json.loads(a), "body": b} for k, a, b in cur.fetchall()]

    return db.read(read)


def _counting_writes(db: Database, monkeypatch: pytest.MonkeyPatch, fail_at: int | None = None) -> list[int]:
    """Count ``db.write`` calls (one per transaction); the ``fail_at``-th (0-based) fails on the storage."""
    calls: list[int] = []
    write = db.write

    def counted(fn: Any) -> Any:
        calls.append(len(calls))
        if fail_at is not None and len(calls) - 1 == fail_at:
            raise StorageUnavailable(db.path.parent, "disk_full", "no space left on device")
        return write(fn)

    monkeypatch.setattr(db, "write", counted)
    return calls


def test_a_request_is_stored_in_transactions_of_at_most_a_chunk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = _db(tmp_path)
    body = claude_logs(*range(1, 61)).SerializeToString()  # 60 records
    writes = _counting_writes(db, monkeypatch)
    prepared, done = ingest(db, body)
    assert done.new == 60 and prepared.count == 60 and done.error is None
    assert len(writes) == -(-60 // sink.CHUNK_ROWS)  # never one transaction for the whole request
    assert len(_stored(db)) == 60


def test_a_key_repeated_in_a_later_chunk_is_stored_once(tmp_path: Path) -> None:
    db = _db(tmp_path)
    sequences = [*range(1, sink.CHUNK_ROWS + 1), 1, 2]  # 1 and 2 again, in the next chunk
    prepared, done = ingest(db, claude_logs(*sequences).SerializeToString())
    assert prepared.count == len(sequences) and done.new == sink.CHUNK_ROWS
    _, again = ingest(db, claude_logs(1, 2).SerializeToString())
    assert again.new == 0 and again.baseline == [] and again.error is None  # a redelivery: nothing new
    assert len(_stored(db)) == sink.CHUNK_ROWS


def test_when_a_later_chunk_fails_the_stored_ones_are_still_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = _db(tmp_path)
    body = claude_logs(*range(1, 2 * sink.CHUNK_ROWS + 1)).SerializeToString()
    _counting_writes(db, monkeypatch, fail_at=1)
    _, done = ingest(db, body)
    assert isinstance(done.error, StorageUnavailable)
    assert done.new == sink.CHUNK_ROWS  # the first chunk is stored: handed on, not lost
    assert {r.sequence for r in done.baseline} == set(range(1, sink.CHUNK_ROWS + 1))
    assert len(_stored(db)) == sink.CHUNK_ROWS


def test_ingest_off_decodes_but_makes_no_rows() -> None:
    body = claude_logs(1, 2).SerializeToString()
    done = prepare.prepare(LOGS, Format.PROTOBUF, body, gzipped=False, limit=1 << 20, received_at_ms=1, storing=False)
    assert done.count == 2 and done.rows == [] and done.baseline == []


def test_clean_text_rows_are_the_rows_of_the_redacting_path() -> None:
    from bridge.receiver.decode import decode_body
    from bridge.receiver.records import extract

    message = codex_logs(
        codex_event("codex.conversation_starts", **{"auth.env_codex_api_key_enabled": True, "model": "m"}),
        codex_event("codex.user_prompt", prompt="plain words", **{"nested.accessToken": "abc"}),
        codex_event("codex.tool_result", output="nothing to hide"),
    )
    records = extract(
        LOGS, decode_body(LOGS, Format.PROTOBUF, message.SerializeToString(), gzipped=False, limit=1 << 20)
    )
    clean = prepare.to_rows(records.records, 5, clean_text=True)
    assert clean == prepare.to_rows(records.records, 5)
    attributes = [json.loads(row[prepare.COLUMNS.index("attributes")]) for row in clean]
    assert attributes[0]["auth.env_codex_api_key_enabled"] == MASK  # a secret key: masked on either path
    assert attributes[1]["nested.accessToken"] == MASK and attributes[1]["prompt"] == "plain words"


@pytest.mark.parametrize("secret", ["sk-abcdefgh12345678", "Bearer abc.def", "https://auth.example/login?code=9"])
def test_text_that_needs_masking_is_masked_whichever_record_holds_it(tmp_path: Path, secret: str) -> None:
    db = _db(tmp_path)
    message = codex_logs(
        codex_event("codex.user_prompt", prompt="fine"),
        codex_event("codex.tool_result", output=f"the value is {secret} here"),
    )
    ingest(db, message.SerializeToString())
    rows = _stored(db)
    assert len(rows) == 2
    assert rows[0]["attributes"]["prompt"] == "fine"
    assert secret not in json.dumps(rows)
    assert rows[1]["attributes"]["output"] != f"the value is {secret} here"


def test_the_telemetry_store_keeps_only_the_index_it_reads_by(tmp_path: Path) -> None:
    """The dedup key's UNIQUE index stays; a store made before migration 2 loses its conversation index."""
    path = tmp_path / "telemetry.sqlite3"
    Database(path, migrations=TELEMETRY_MIGRATIONS[:1]).close()  # as an earlier bridge left it

    def indexes(db: Database) -> set[str]:
        def read(conn: Any) -> set[str]:
            rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'otel_records'")
            return {name for (name,) in rows}

        return db.read(read)

    old = Database(path, migrations=TELEMETRY_MIGRATIONS[:1])
    assert "otel_records_conversation" in indexes(old)
    old.close()
    db = Database(path, migrations=TELEMETRY_MIGRATIONS)
    assert db.schema_version == len(TELEMETRY_MIGRATIONS)
    kept = indexes(db)
    assert "otel_records_conversation" not in kept
    assert any(name.startswith("sqlite_autoindex_otel_records") for name in kept)  # dedup_key UNIQUE
    db.close()


def _full(db: Database) -> list[dict[str, Any]]:
    """``otel_records_full``: every row with its resource's JSON, wherever the row keeps it."""

    def read(conn: Any) -> list[dict[str, Any]]:
        cur = conn.execute("SELECT dedup_key, resource FROM otel_records_full ORDER BY id")
        return [{"key": k, "resource": json.loads(r)} for k, r in cur.fetchall()]

    return db.read(read)


def test_a_resource_is_stored_once_and_every_record_names_it(tmp_path: Path) -> None:
    db = _db(tmp_path)
    ingest(db, claude_logs(1, 2, 3).SerializeToString())
    ingest(db, claude_logs(4, 5).SerializeToString())  # the same exporter: the same resource
    ingest(db, logs_request([claude_event(6)], service="claude-code-2").SerializeToString())

    def read(conn: Any) -> tuple[list[Any], list[Any]]:
        resources = conn.execute("SELECT id, resource FROM otel_resources ORDER BY id").fetchall()
        rows = conn.execute("SELECT resource, resource_id FROM otel_records ORDER BY id").fetchall()
        return resources, rows

    resources, rows = db.read(read)
    assert [json.loads(r) for _, r in resources] == [{"service.name": "claude-code"}, {"service.name": "claude-code-2"}]
    first, second = (rid for rid, _ in resources)
    assert rows == [("", first)] * 5 + [("", second)]  # the JSON is not repeated in the records
    assert [r["resource"]["service.name"] for r in _full(db)] == ["claude-code"] * 5 + ["claude-code-2"]


def test_a_resource_is_redacted_before_it_is_stored(tmp_path: Path) -> None:
    db = _db(tmp_path)
    request = claude_logs(1)
    request.resource_logs[0].resource.attributes.append(kv("api_key", "sk-abcdefgh12345678"))
    ingest(db, request.SerializeToString())
    assert _full(db)[0]["resource"]["api_key"] == MASK

    def stored(conn: Any) -> str:
        return "".join(r for (r,) in conn.execute("SELECT resource FROM otel_resources"))

    assert "sk-abcdefgh12345678" not in db.read(stored)


def test_rows_stored_before_the_resources_table_keep_their_resource(tmp_path: Path) -> None:
    """A store an earlier bridge wrote (resource inline in each row) reads the same through the view."""
    path = tmp_path / "telemetry.sqlite3"
    old = Database(path, migrations=TELEMETRY_MIGRATIONS[:2])

    def earlier_row(conn: Any) -> None:
        conn.execute(
            "INSERT INTO otel_records (dedup_key, signal, provider, attributes, resource, detail, received_at_ms) "
            "VALUES ('claude:old:1', 'log', 'claude_code', '{}', '{\"service.name\":\"claude-code\"}', '{}', 1)"
        )

    old.write(earlier_row)
    old.close()
    db = _db(tmp_path)
    ingest(db, claude_logs(1).SerializeToString())
    assert [(r["key"], r["resource"]) for r in _full(db)] == [
        ("claude:old:1", {"service.name": "claude-code"}),
        (f"claude:{SESSION}:1", {"service.name": "claude-code"}),
    ]


def test_a_request_mixing_stored_and_new_records_reports_exactly_the_new_ones(tmp_path: Path) -> None:
    db = _db(tmp_path)
    ingest(db, claude_logs(2, 4).SerializeToString())
    _, done = ingest(db, claude_logs(1, 2, 3, 3, 4, 5).SerializeToString())  # 3 twice in the request
    assert done.new == 3 and done.error is None
    assert [r.sequence for r in done.baseline] == [1, 3, 5]  # the first 3 only; 2 and 4 were stored before
    assert sorted(r["key"] for r in _stored(db)) == sorted(f"claude:{SESSION}:{n}" for n in range(1, 6))
