"""Captured content from the real recorded streams: assembly, dedup, restart, partial items."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bridge.capture import store as store_module
from bridge.capture.ledger import Ledger
from bridge.capture.normalize import normalize
from bridge.capture.store import CaptureStore
from bridge.store.db import Database
from tests.capture.reference import REFERENCE, notifications
from tests.support.wire import wire


def events(scenario: str) -> list:  # type: ignore[type-arg]
    out = []
    for n in notifications(scenario):
        assert n.method is not None
        ev = normalize(n.method, bytes(n.params), n.emittedAtMs)
        if ev is not None:
            out.append(ev)
    return out


def recorded_items(scenario: str) -> dict[str, dict]:  # type: ignore[type-arg]
    items = {}
    for text in (REFERENCE / scenario / "appserver.jsonl").read_text().splitlines():
        msg = json.loads(text).get("msg") or {}
        if msg.get("method") == "item/completed":
            item = msg["params"]["item"]
            items[item["id"]] = item
    return items


def test_shell_turn_is_assembled_like_the_recorded_stream(tmp_path: Path) -> None:
    store = CaptureStore(Database(tmp_path / "c.db"))
    evs = events("shell")
    store.apply(evs)
    thread = wire(store.get_thread(evs[0].thread_id))
    assert thread is not None
    [turn] = thread["turns"]
    assert turn["status"] == "completed"
    assert turn["usage"]["total"]["totalTokens"] > 0
    recorded = recorded_items("shell")
    assert [i["itemId"] for i in turn["items"]] == list(recorded)
    for item in turn["items"]:
        want = recorded[item["itemId"]]
        assert item["type"] == want["type"]
        if want["type"] == "agentMessage":
            assert item["text"] == want["text"]
        if want["type"] == "commandExecution":
            assert item["output"] == want["aggregatedOutput"]
            assert item["exitCode"] == want["exitCode"]
        assert item["source"] == "app_server_stream"


def test_the_same_frames_twice_change_nothing(tmp_path: Path) -> None:
    store = CaptureStore(Database(tmp_path / "c.db"))
    evs = events("chat")
    first = store.apply(evs)
    before = wire(store.get_thread(evs[0].thread_id))
    again = store.apply(evs)
    assert len(first) == len(evs)
    assert again == []
    assert wire(store.get_thread(evs[0].thread_id)) == before
    log = store.decision_log(len(evs))
    assert {d.decision for d in log} == {"duplicate"}
    assert store.counts["duplicate"] == len(evs)


def test_a_restarted_store_does_not_re_accept(tmp_path: Path) -> None:
    db_path = tmp_path / "c.db"
    evs = events("chat")
    CaptureStore(Database(db_path)).apply(evs)
    fresh = CaptureStore(Database(db_path))  # a new bridge on the same data dir
    assert fresh.apply(evs) == []
    assert fresh.counts == {"accepted": 0, "duplicate": len(evs), "replaced": 0, "dropped": 0}


def test_a_crash_mid_item_leaves_the_partial_item(tmp_path: Path) -> None:
    evs = events("chat")
    cut = next(i for i, e in enumerate(evs) if e.kind == "delta" and e.method == "item/agentMessage/delta") + 2
    store = CaptureStore(Database(tmp_path / "c.db"))
    store.apply(evs[:cut])
    thread = wire(store.get_thread(evs[0].thread_id))
    assert thread is not None
    partial = [i for t in thread["turns"] for i in t["items"] if i["type"] == "agentMessage"]
    assert partial and partial[0]["status"] == "inProgress"
    deltas = [e.delta for e in evs[:cut] if e.method == "item/agentMessage/delta"]
    assert partial[0]["text"] == "".join(d or "" for d in deltas)
    assert store.mark_incomplete() == [f"{evs[0].thread_id}/{thread['turns'][0]['turnId']}"]
    store.apply(evs[cut:])  # a late turn/completed replaces the mark
    done = wire(store.get_thread(evs[0].thread_id))
    assert done is not None and done["turns"][0]["status"] == "completed"


def test_delete_and_decision_replay(tmp_path: Path) -> None:
    store = CaptureStore(Database(tmp_path / "c.db"))
    evs = events("shell")
    store.apply(evs)
    store.apply(evs[:5])
    ok, count, diff = store.decisions_replay_consistent(0)
    from bridge.capture.rows import LOGGED_WHEN_ACCEPTED as _LOGGED_WHEN_ACCEPTED

    unlogged = sum(1 for e in evs if e.kind not in _LOGGED_WHEN_ACCEPTED)
    assert ok and count == len(evs) - unlogged + 5 and diff == ""
    assert store.delete_thread(evs[0].thread_id) is True
    assert wire(store.get_thread(evs[0].thread_id)) is None
    assert store.delete_thread(evs[0].thread_id) is False


def test_retention_removes_old_content_and_its_dedup_memory(tmp_path: Path) -> None:
    store = CaptureStore(Database(tmp_path / "c.db"))
    evs = events("chat")
    store.apply(evs, at_ms=1_000)
    assert store.apply_retention(older_than_ms=2_000) == 1
    assert wire(store.get_thread(evs[0].thread_id)) is None
    counts = store.db.read(lambda c: [c.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                                      for t in ("turns", "items", "deltas", "ledger", "decisions")])  # fmt: skip
    assert counts == [0, 0, 0, 0, 0]


def test_interleaved_delta_kinds_of_one_item_keep_their_arrival_order(tmp_path: Path) -> None:
    import json as _json

    def frame(method: str, delta: str, at: int, **extra: int) -> object:
        params = {"threadId": "t", "turnId": "u", "itemId": "rs", "delta": delta, **extra}
        return normalize(method, _json.dumps(params).encode(), at)

    started = normalize(
        "item/started",
        _json.dumps({"threadId": "t", "turnId": "u", "item": {"type": "reasoning", "id": "rs"}}).encode(),
        1,
    )
    summary, raw = "item/reasoning/summaryTextDelta", "item/reasoning/textDelta"
    batch = [
        started,
        frame(summary, "A", 2, summaryIndex=0),
        frame(raw, "b", 3, contentIndex=0),
        frame(summary, "C", 4, summaryIndex=0),
    ]
    store = CaptureStore(Database(tmp_path / "c.db"))
    store.apply(batch)  # type: ignore[arg-type]
    store.apply([frame(summary, "D", 5, summaryIndex=0)])  # type: ignore[list-item]
    thread = wire(store.get_thread("t"))
    assert thread is not None
    [item] = thread["turns"][0]["items"]
    assert item["status"] == "inProgress"
    assert item["text"] == "AbCD"  # every text delta, in the order it arrived, across batches
    fresh = CaptureStore(Database(tmp_path / "c.db"))  # after a restart the same frames are duplicates
    assert fresh.apply(batch[1:]) == []  # type: ignore[arg-type]


def test_bounded_caches_decide_and_assemble_as_unbounded_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Memory stays flat over a long day: the ledger forgets its oldest keys and the ordinal caches
    restart past their bound, and every decision and ordinal is still what the store says."""
    evs = events("shell") + events("chat")
    roomy = CaptureStore(Database(tmp_path / "roomy.db"))
    roomy.apply(evs, at_ms=1_000)

    monkeypatch.setattr(store_module, "CACHED_PER_KIND", 2)
    tight = CaptureStore(Database(tmp_path / "tight.db"))
    tight.ledger = Ledger(tight.ledger.preferred_source, capacity=6)
    for ev in evs:  # one frame a batch: every bound is crossed many times
        tight.apply([ev], at_ms=1_000)
        assert len(tight.ledger._held) <= 7
        assert all(len(c) <= 3 for c in (tight._delta_ord, tight._item_ord, tight._turn_ord, tight._turns_known))

    for thread_id in {ev.thread_id for ev in evs}:
        assert wire(tight.get_thread(thread_id)) == wire(roomy.get_thread(thread_id))
    assert tight.counts == roomy.counts
    assert tight.apply(evs) == []  # the forgotten keys are found in the store again
    assert tight.counts["duplicate"] == roomy.counts["duplicate"] + len(evs)


def test_joining_a_baseline_prompt_looks_up_its_turn_not_the_whole_thread(tmp_path: Path) -> None:
    """Every baseline user prompt asks for the stream's userMessage of its turn; in a thread of many
    thousands of items that must be an index lookup, never a sort of the thread's items."""
    db = Database(tmp_path / "capture.sqlite3")
    try:
        plan = db.read(
            lambda c: c.execute("EXPLAIN QUERY PLAN " + store_module.TURN_USER_MESSAGE, ("t", "u", "x")).fetchall()
        )
        details = " ".join(str(row[-1]) for row in plan)
    finally:
        db.close()
    assert "items_turn" in details and "TEMP B-TREE" not in details, details


def test_a_threads_sources_are_kept_without_reading_them_back_each_batch(tmp_path: Path) -> None:
    """Only the capture writes ``threads.sources``, so it keeps them: a batch from a source the
    thread already has costs one small UPDATE, a new source is merged in, and a deleted thread
    starts over from its row."""
    import msgspec

    store = CaptureStore(Database(tmp_path / "c.db"))
    evs = events("chat")
    thread_id = evs[0].thread_id
    store.apply(evs[:3])
    statements: list[str] = []
    store.db._writer.set_trace_callback(statements.append)
    store.apply(evs[3:6])
    assert not [s for s in statements if "SELECT sources" in s]
    assert (wire(store.get_thread(thread_id)) or {})["sources"] == ["app_server_stream"]

    other = next(ev for ev in evs if ev.kind == "other")
    from_baseline = msgspec.structs.replace(other, source="otel", key=other.key + "|baseline")
    store.apply([from_baseline, *evs[6:]])
    assert (wire(store.get_thread(thread_id)) or {})["sources"] == ["app_server_stream", "otel"]

    store.db._writer.set_trace_callback(None)
    assert store.delete_thread(thread_id)
    fresh = [msgspec.structs.replace(ev, key=ev.key + "|again") for ev in evs[:3]]
    store.apply(fresh)
    assert (wire(store.get_thread(thread_id)) or {})["sources"] == ["app_server_stream"]
