"""Stream and baseline for the same turns in one store: one item per real item, decided by precedence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bridge.capture.events import CaptureEvent
from bridge.capture.store import CaptureStore
from bridge.receiver.baseline import BaselineFeeder
from bridge.store.db import Database
from tests.crosssource.support import OTEL, STREAM, fixture_records, fixture_stream, items_of, load_fixture
from tests.support.wire import wire

CODEX = load_fixture("codex_chat_shell.json")
THREAD = CODEX["threadId"]


def baseline_events() -> list[CaptureEvent]:
    out: list[CaptureEvent] = []
    BaselineFeeder(out.extend).feed(fixture_records(CODEX))
    return out


def stream_items() -> dict[str, str]:
    """The stream's completed items in order: id → type."""
    return {
        e.item_id: e.item.type or ""
        for e in fixture_stream(CODEX)
        if e.kind == "item_completed" and e.item is not None and e.item_id is not None
    }


@pytest.fixture
def store(tmp_path: Path) -> CaptureStore:
    return CaptureStore(Database(tmp_path / "c.db"))


def decisions(store: CaptureStore) -> dict[str, str]:
    return {d["key"]: d["decision"] for d in wire(store.decision_log(1000)) if d["decision"] != "accepted"}


def assert_one_item_per_real_item(thread: dict[str, Any]) -> dict[str, dict[str, Any]]:
    items = {i["itemId"]: i for i in items_of(thread)}
    assert len(items) == len(items_of(thread)), "an item twice"
    assert list(items) == list(stream_items()), "the stream's items, in its order, nothing else"
    return items


@pytest.mark.parametrize(("preferred", "decision"), [(STREAM, "dropped"), (OTEL, "replaced")])
def test_a_turn_seen_by_both_is_one_item_per_real_item(tmp_path: Path, preferred: str, decision: str) -> None:
    store = CaptureStore(Database(tmp_path / "c.db"), preferred)
    store.apply(fixture_stream(CODEX))
    store.apply(baseline_events())
    thread = wire(store.get_thread(THREAD))
    assert thread is not None
    items = assert_one_item_per_real_item(thread)
    both = sorted([STREAM, OTEL])
    for item_id, item in items.items():
        if item["type"] == "reasoning":  # the baseline has no reasoning items
            assert item["seenBy"] == [STREAM] and item["source"] == STREAM
        else:
            assert item["seenBy"] == both, item_id
            assert item["source"] == preferred, item_id
    command = next(i for i in items.values() if i["type"] == "commandExecution")
    assert command["output"] == "hello-fixture\n" and command["exitCode"] == 0  # plain output, either way
    assert command["command"] == ("echo hello-fixture" if preferred == OTEL else "/bin/bash -lc 'echo hello-fixture'")
    # what only the baseline knows is kept whoever won
    assert command["extra"]["toolDecision"] == {"decision": "approved", "source": "User"}
    assert command["extra"]["durationMs"] > 0
    for turn in thread["turns"]:
        assert turn["status"] == "completed"
        assert turn["usage"]["total"]["inputTokens"] > 0  # the stream's usage
        assert turn["usage"]["otel"]["apiRequests"] >= 1 and turn["usage"]["otel"]["apiDurationMs"] >= 0

    # every cross-source decision is logged, by the shared keys
    logged = decisions(store)
    shared = [f"item|{THREAD}|{i}" for i, item in items.items() if item["type"] != "reasoning"]
    shared += [f"item/started|{THREAD}|{command['itemId']}", f"thread/started|{THREAD}"]
    shared += [f"turn/{what}|{THREAD}|{t['turnId']}" for t in thread["turns"] for what in ("started", "completed")]
    assert {k: logged.get(k) for k in shared} == dict.fromkeys(shared, decision)
    assert all(d["incomingSource"] == OTEL for d in wire(store.decision_log(1000)) if d["decision"] == decision)
    assert store.decisions_replay_consistent(0)[0]


def test_the_baseline_first_then_the_stream_still_makes_one_item(store: CaptureStore) -> None:
    store.apply(baseline_events())  # the stream lagging behind (or replayed later)
    store.apply(fixture_stream(CODEX))
    thread = wire(store.get_thread(THREAD))
    assert thread is not None
    items = {i["itemId"]: i for i in items_of(thread)}
    assert len(items) == len(items_of(thread)), "an item twice"
    # one item per real item (the prompts' userprompt:<turn> rows were adopted); the order is arrival order
    assert sorted(items) == sorted(stream_items())
    prompts = [i for i in items.values() if i["type"] == "userMessage"]
    assert [p["source"] for p in prompts] == [STREAM, STREAM]  # the stream wins by default
    assert all(p["seenBy"] == sorted([OTEL, STREAM]) for p in prompts)
    assert [t["items"][0]["type"] for t in thread["turns"]] == ["userMessage", "userMessage"]
    logged = decisions(store)
    assert all(logged[f"item|{THREAD}|{p['itemId']}"] == "replaced" for p in prompts)
    for turn in thread["turns"]:
        # the stream's usage arrived after the baseline's sums: both are there
        assert turn["usage"]["total"]["inputTokens"] > 0 and turn["usage"]["otel"]["apiRequests"] >= 1


def test_a_baseline_only_thread_is_filled(store: CaptureStore) -> None:
    store.apply(baseline_events())
    thread = wire(store.get_thread(THREAD))
    assert thread is not None
    assert thread["provider"] == "codex" and thread["sources"] == [OTEL]
    assert [t["status"] for t in thread["turns"]] == ["completed", "completed"]
    types = [[i["type"] for i in t["items"]] for t in thread["turns"]]
    assert types == [["userMessage", "agentMessage"], ["userMessage", "commandExecution", "agentMessage"]]
    assert all(i["source"] == OTEL and i["seenBy"] == [OTEL] for i in items_of(thread))
    real_ids = set(stream_items())
    assert {i["itemId"] for i in items_of(thread) if i["type"] != "userMessage"} <= real_ids
    assert thread["turns"][1]["usage"] == {
        "otel": {"apiRequests": 2, "apiDurationMs": thread["turns"][1]["usage"]["otel"]["apiDurationMs"],
                 "inputTokens": 2400, "cachedInputTokens": 400, "cacheWriteInputTokens": 0, "outputTokens": 60,
                 "reasoningOutputTokens": 20, "totalTokens": 2460}
    }  # fmt: skip


def test_the_baselines_usage_sums_the_same_whichever_batches_bring_it(tmp_path: Path) -> None:
    """A batch adds its API requests' counts to a turn in one write: the sums are those of one at a time."""
    one_at_a_time = CaptureStore(Database(tmp_path / "one.db"))
    for ev in baseline_events():
        one_at_a_time.apply([ev])
    stream = fixture_stream(CODEX)
    usage = [e for e in stream if e.kind == "usage"]
    mixed = CaptureStore(Database(tmp_path / "mixed.db"))
    mixed.apply([e for e in stream if e.kind != "usage"])
    mixed.apply([*baseline_events(), *usage])  # the stream's usage updates after the baseline's, same batch

    def turn_usage(store: CaptureStore) -> list[Any]:
        thread = wire(store.get_thread(THREAD))
        assert thread is not None
        return [t["usage"] for t in thread["turns"]]

    sums = [u["otel"] for u in turn_usage(one_at_a_time)]
    assert sums[1]["apiRequests"] == 2 and sums[1]["inputTokens"] == 2400
    assert [u["otel"] for u in turn_usage(mixed)] == sums
    assert all(u["total"]["inputTokens"] > 0 for u in turn_usage(mixed))


def test_baseline_events_again_change_no_content(store: CaptureStore) -> None:
    """Redeliveries stop at the record level; if the same events came again, nothing would change."""
    store.apply(fixture_stream(CODEX))
    store.apply(baseline_events())
    before = wire(store.get_thread(THREAD))
    assert before is not None
    applied = store.apply(baseline_events())
    assert [a for a in applied if a.outcome.decision not in ("duplicate", "dropped")] == []
    after = wire(store.get_thread(THREAD))
    assert after is not None and after["turns"] == before["turns"]
    again = [d["decision"] for d in wire(store.decision_log(1000))[: len(baseline_events())]]
    assert set(again) <= {"duplicate", "dropped"}  # the losing copy loses again; its own keys are duplicates


def test_kill_switch_mid_turn_the_baseline_captures_the_rest(store: CaptureStore) -> None:
    stream = fixture_stream(CODEX)
    command_started = next(
        i for i, e in enumerate(stream)
        if e.kind == "item_started" and e.item is not None and e.item.type == "commandExecution"
    )  # fmt: skip
    store.apply(stream[: command_started + 1])  # the kill switch: nothing more from the stream
    store.apply(baseline_events())
    thread = wire(store.get_thread(THREAD))
    assert thread is not None
    shell = thread["turns"][1]
    assert shell["status"] == "completed"
    kinds = [(i["type"], i["source"], i["seenBy"]) for i in shell["items"]]
    both = sorted([STREAM, OTEL])
    assert kinds == [
        ("userMessage", STREAM, both),
        ("reasoning", STREAM, [STREAM]),
        ("commandExecution", OTEL, both),  # started on the stream, completed by the baseline
        ("agentMessage", OTEL, [OTEL]),
    ]
    command = shell["items"][2]
    assert command["status"] == "completed" and command["output"] == "hello-fixture\n" and command["exitCode"] == 0
    assert shell["items"][3]["text"].startswith("The command ran.")
    assert len({i["itemId"] for i in items_of(thread)}) == len(items_of(thread))
