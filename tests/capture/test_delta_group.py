"""Runs of deltas (the pipeline's hot path) decide, store and go live exactly as one event at a time would.

Each scenario goes through the pipeline, which groups consecutive deltas of an
item (:class:`~bridge.capture.delta_group.DeltaGroup`), and through the plain
path (``normalize`` per frame, then ``CaptureStore.apply``): the live events
must be the same bytes, and the store the same rows, decisions and counts.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import msgspec
import pytest

from bridge.capture import store as store_module
from bridge.capture.delta_group import AppliedDeltas, DeltaGroup
from bridge.capture.ledger import Ledger, delta_key, text_hash
from bridge.capture.live import live_messages
from bridge.capture.normalize import NormalizeError, normalize
from bridge.capture.pipeline import CapturePipeline
from bridge.capture.rows import Applied
from bridge.capture.store import CaptureStore
from bridge.redact import register_secret
from bridge.store.db import Database
from tests.capture.reference import Note, notifications

AT = "2026-12-04T10:00:00.000Z"
TABLES = {
    "deltas": "thread_id, item_id, first_ordinal",
    "items": "thread_id, item_id",
    "turns": "thread_id, turn_id",
    "threads": "thread_id",
    "ledger": "key",
    "decisions": "id",
}


def note(method: str, params: dict[str, Any], at: int | None) -> Note:
    line = json.dumps({"method": method, "params": params, "emittedAtMs": at}).encode()
    return Note(method, msgspec.Raw(json.dumps(params).encode()), at, line)


def delta(item: str, text: str, at: int | None, method: str = "item/agentMessage/delta") -> Note:
    return note(method, {"threadId": "t1", "turnId": "u1", "itemId": item, "delta": text}, at)


def started(item: str, at: int) -> Note:
    return note("item/started", {"threadId": "t1", "turnId": "u1", "item": {"type": "agentMessage", "id": item,
                                                                           "text": ""}}, at)  # fmt: skip


def with_params(frame: Note, params: bytes) -> Note:
    return Note(frame.method, msgspec.Raw(params), frame.emittedAtMs, frame.line)


def dump(db_path: Path) -> dict[str, list[tuple[Any, ...]]]:
    conn = sqlite3.connect(db_path)
    try:
        return {table: conn.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall()
                for table, order in TABLES.items()}  # fmt: skip
    finally:
        conn.close()


def by_groups(directory: Path, batches: list[list[Note]], capacity: int | None) -> tuple[list[bytes], CaptureStore]:
    store = CaptureStore(Database(directory / "groups.db"))
    if capacity is not None:
        store.ledger = Ledger(store.ledger.preferred_source, capacity)
    pipeline = CapturePipeline(store, lambda method, params: 0, lambda: True)
    heads: list[bytes] = []
    for batch in batches:
        applied, _ = pipeline._process([("stream", batch)])
        heads += live_messages(applied, AT, len(heads) + 1)
    return heads, store


def one_at_a_time(directory: Path, batches: list[list[Note]], capacity: int | None) -> tuple[list[bytes], CaptureStore]:
    store = CaptureStore(Database(directory / "plain.db"))
    if capacity is not None:
        store.ledger = Ledger(store.ledger.preferred_source, capacity)
    heads: list[bytes] = []
    for batch in batches:
        events = []
        for frame in batch:
            assert frame.method is not None
            try:
                ev = normalize(frame.method, frame.params, frame.emittedAtMs)
            except NormalizeError:
                continue
            if ev is not None:
                events.append(ev)
        applied: list[Applied] = store.apply(events) if events else []
        heads += live_messages(applied, AT, len(heads) + 1)
    return heads, store


def assert_same(tmp_path: Path, batches: list[list[Note]], capacity: int | None = None) -> list[bytes]:
    grouped, g_store = by_groups(tmp_path, batches, capacity)
    plain, p_store = one_at_a_time(tmp_path, batches, capacity)
    assert grouped == plain
    assert dump(tmp_path / "groups.db") == dump(tmp_path / "plain.db")
    assert g_store.counts == p_store.counts
    return grouped


@pytest.fixture(autouse=True)
def _fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "now_ms", lambda: 1_000)


def test_recorded_turns_go_live_and_into_the_store_as_one_event_at_a_time(tmp_path: Path) -> None:
    frames = notifications("shell") + notifications("chat")
    heads = assert_same(tmp_path, [frames[i : i + 7] for i in range(0, len(frames), 7)])
    assert len(heads) > 20


def test_repeated_deltas_in_and_across_batches_are_duplicates_at_their_place(tmp_path: Path) -> None:
    a1, a2, a3 = delta("m", "A", 100), delta("m", "B", 101), delta("m", "C", 101)
    batches = [
        [started("m", 99), a1, a2, a2, a3, a1],  # a repeat right after, and one later in the run
        [a3, delta("m", "D", 102), a1],  # a new delta between two the store already has
        [delta("m", "same", 103), delta("m", "same", 103)],  # the same text in the same ms: one delta
    ]
    heads = assert_same(tmp_path, batches)
    assert len(heads) == 1 + 3 + 1 + 1


def test_interleaved_items_kinds_and_unseen_items_keep_arrival_order(tmp_path: Path) -> None:
    summary = "item/reasoning/summaryTextDelta"
    batches = [
        [
            started("m", 1), delta("m", "a", 2), delta("r", "x", 3, summary), delta("m", "b", 4),
            note(summary, {"threadId": "t1", "turnId": "u1", "itemId": "r", "delta": "y", "summaryIndex": 0}, 5),
            delta("never-started", "z", None),  # an item whose start was never seen: kept as a partial item
            delta("m", "c", 6), with_params(delta("m", "bad", 7), b'{"threadId": 1}'),  # a parser error
            delta("m", "d", 8),
        ]
    ]  # fmt: skip
    assert_same(tmp_path, batches)


def test_secrets_in_deltas_are_masked_as_one_at_a_time_would(tmp_path: Path) -> None:
    """A run is scanned once; when anything in it may be a secret, every delta is redacted on its own."""
    register_secret("registered-secret-value-42")
    key = "sk-" + "A1b2C3d4E5f6G7h8I9j0KlMn"
    batches = [
        [started("m", 1), delta("m", "plain ", 2), delta("m", f"key {key} here", 3), delta("m", "more", 4)],
        [delta("m", "s", 5), delta("m", "k-abc", 6)],  # a pattern across two deltas: each alone is plain
        [delta("m", "x registered-secret-value-42 y", 7), delta("m", "Bearer abcdefghijklmnopqrstuvwxyz012345", 8)],
        [delta("m", "see https://example.invalid/path", 9)],  # scanned, nothing to mask
    ]
    heads = b"".join(assert_same(tmp_path, batches))
    assert key.encode() not in heads and b"registered-secret-value-42" not in heads
    assert b"abcdefghijklmnopqrstuvwxyz012345" not in heads


def test_a_ledger_that_forgets_still_finds_stored_deltas(tmp_path: Path) -> None:
    """Past its capacity the ledger forgets keys; a replayed run is then found in the store, not re-accepted."""
    run = [delta("m", f"w{i} ", 200 + i) for i in range(30)]
    batches = [[started("m", 199), *run[:15]], run[15:], run, run[10:20]]
    heads = assert_same(tmp_path, batches, capacity=8)
    assert len(heads) == 31


def test_a_group_keeps_what_the_per_event_path_computes() -> None:
    group = DeltaGroup("item/agentMessage/delta", "t1", "u1", "m")
    text = "secret sk-abcdefghijklmnopqrstu and more"
    digest = text_hash(text)
    group.keys.append(group.key_prefix + "7|" + digest)
    group.emitted.append(7)
    group.digests.append(digest)
    group.texts.append("masked")
    ev = group.event(0)
    assert ev.key == delta_key("item/agentMessage/delta", "t1", "m", 7, digest)
    assert (ev.kind, ev.delta, ev.text_hash, ev.turn_id) == ("delta", "masked", digest, "u1")
    assert AppliedDeltas(group, 4, 1).outcome.decision == "accepted"
