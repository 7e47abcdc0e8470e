"""The receiver's worker half: a request decoded, redacted, encoded and stored in short transactions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bridge.receiver import sink
from bridge.receiver.decode import SIGNAL_BY_PATH, Format
from bridge.redact import MASK
from bridge.store.db import Database, StorageUnavailable
from tests.receiver.payloads import claude_logs, codex_event, codex_logs

LOGS = SIGNAL_BY_PATH["/v1/logs"]


def _db(tmp_path: Path) -> Database:
    return Database(tmp_path / "capture.sqlite3")


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
    done = sink.ingest(db, LOGS, Format.PROTOBUF, body, False, 1 << 20, 1)
    assert len(done.new) == 60 and done.rows == 60 and done.error is None
    assert len(writes) == -(-60 // sink.CHUNK_ROWS)  # never one transaction for the whole request
    assert len(_stored(db)) == 60


def test_a_key_repeated_in_a_later_chunk_is_stored_once(tmp_path: Path) -> None:
    db = _db(tmp_path)
    sequences = [*range(1, sink.CHUNK_ROWS + 1), 1, 2]  # 1 and 2 again, in the next chunk
    done = sink.ingest(db, LOGS, Format.PROTOBUF, claude_logs(*sequences).SerializeToString(), False, 1 << 20, 1)
    assert done.rows == len(sequences) and len(done.new) == sink.CHUNK_ROWS
    again = sink.ingest(db, LOGS, Format.PROTOBUF, claude_logs(1, 2).SerializeToString(), False, 1 << 20, 1)
    assert again.new == [] and again.error is None  # a redelivery: nothing new
    assert len(_stored(db)) == sink.CHUNK_ROWS


def test_when_a_later_chunk_fails_the_stored_ones_are_still_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = _db(tmp_path)
    body = claude_logs(*range(1, 2 * sink.CHUNK_ROWS + 1)).SerializeToString()
    _counting_writes(db, monkeypatch, fail_at=1)
    done = sink.ingest(db, LOGS, Format.PROTOBUF, body, False, 1 << 20, 1)
    assert isinstance(done.error, StorageUnavailable)
    assert len(done.new) == sink.CHUNK_ROWS  # the first chunk is stored: handed on, not lost
    assert {r.sequence for r in done.new} == set(range(1, sink.CHUNK_ROWS + 1))
    assert len(_stored(db)) == sink.CHUNK_ROWS


def test_ingest_off_decodes_but_stores_nothing(tmp_path: Path) -> None:
    db = _db(tmp_path)
    done = sink.ingest(None, LOGS, Format.PROTOBUF, claude_logs(1, 2).SerializeToString(), False, 1 << 20, 1)
    assert done.rows == 2 and done.new == []
    assert _stored(db) == []


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
    clean = sink.to_rows(records.records, 5, clean_text=True)
    assert clean == sink.to_rows(records.records, 5)
    attributes = [json.loads(row[sink.COLUMNS.index("attributes")]) for row in clean]
    assert attributes[0]["auth.env_codex_api_key_enabled"] == MASK  # a secret key: masked on either path
    assert attributes[1]["nested.accessToken"] == MASK and attributes[1]["prompt"] == "plain words"


@pytest.mark.parametrize("secret", ["sk-abcdefgh12345678", "Bearer abc.def", "https://auth.example/login?code=9"])
def test_text_that_needs_masking_is_masked_whichever_record_holds_it(tmp_path: Path, secret: str) -> None:
    db = _db(tmp_path)
    message = codex_logs(
        codex_event("codex.user_prompt", prompt="fine"),
        codex_event("codex.tool_result", output=f"the value is {secret} here"),
    )
    sink.ingest(db, LOGS, Format.PROTOBUF, message.SerializeToString(), False, 1 << 20, 1)
    rows = _stored(db)
    assert len(rows) == 2
    assert rows[0]["attributes"]["prompt"] == "fine"
    assert secret not in json.dumps(rows)
    assert rows[1]["attributes"]["output"] != f"the value is {secret} here"
