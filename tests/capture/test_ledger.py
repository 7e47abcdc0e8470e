"""Dedup decisions as a table (pure)."""

from __future__ import annotations

import pytest

from bridge.capture.ledger import Ledger, decide, delta_key, item_content_key, lifecycle_key, text_hash

S, O = "app_server_stream", "otel"  # noqa: E741


@pytest.mark.parametrize(
    ("stored", "incoming", "preferred", "decision", "chosen", "replaced"),
    [
        (None, S, S, "accepted", S, None),
        (None, O, S, "accepted", O, None),
        (S, S, S, "duplicate", S, None),
        (O, O, S, "duplicate", O, None),
        (O, S, S, "replaced", S, O),  # the stream's content wins by default
        (S, O, S, "dropped", S, None),
        (S, O, O, "replaced", O, S),  # dedup.completedContentSource = otel
        (O, S, O, "dropped", O, None),
    ],
)
def test_decision_table(
    stored: str | None, incoming: str, preferred: str, decision: str, chosen: str, replaced: str | None
) -> None:
    outcome = decide(stored, incoming, preferred)
    assert (outcome.decision, outcome.chosen_source, outcome.replaced_source) == (decision, chosen, replaced)


def test_ledger_remembers_its_decisions() -> None:
    ledger = Ledger(S)
    key = item_content_key("t", "i")
    assert ledger.decide(key, O).decision == "accepted"
    assert ledger.decide(key, O).decision == "duplicate"
    assert ledger.decide(key, S).decision == "replaced"
    assert ledger.decide(key, S).decision == "duplicate"
    assert ledger.decide(key, O).decision == "dropped"


def test_delta_keys_differ_by_text_and_time_but_not_by_arrival() -> None:
    def key(at: int, text: str) -> str:
        return delta_key("item/agentMessage/delta", "t", "i", at, text_hash(text))

    a = key(100, "hello")
    assert a == key(100, "hello")
    assert a != key(101, "hello")
    assert a != key(100, "hello!")


def test_a_trim_forgets_the_oldest_half_and_names_the_items_and_threads_it_forgot() -> None:
    """Only the deltas of the items named need a store lookup later: a stream's new items need none."""
    ledger = Ledger("app_server_stream", capacity=4)
    old = [
        delta_key("item/agentMessage/delta", "t1", "i1", 1, text_hash("a")),
        lifecycle_key("turn/started", "t2", "u1"),
        delta_key("item/commandExecution/outputDelta", "t1", "i2", 2, text_hash("b")),
    ]
    new = [item_content_key("t3", "i9"), delta_key("item/agentMessage/delta", "t3", "i9", 3, text_hash("c"))]
    for key in old + new:
        ledger.decide(key, "app_server_stream")
    assert Ledger("x", capacity=9).trim() is None  # under capacity: nothing forgotten

    forgotten = ledger.trim()

    assert forgotten is not None
    assert forgotten.items == {("t1", "i1")}  # the oldest half: 5 // 2 keys
    assert forgotten.threads == {"t2"}
    assert [key in ledger for key in old + new] == [False, False, True, True, True]
    assert ledger.trim() is None


def test_only_keys_that_may_be_stored_are_looked_up() -> None:
    """What the ledger does not hold is looked up in the store only where it can be there: any key
    of a thread with rows from before this process; in a fresh thread, only what a trim forgot."""
    from bridge.capture.events import CaptureEvent
    from bridge.capture.ledger import Forgotten
    from bridge.capture.recall import Recall

    def delta(thread: str, item: str, n: int) -> CaptureEvent:
        return CaptureEvent("delta", "item/agentMessage/delta", "app_server_stream", f"d|{thread}|{item}|{n}", thread,
                            "u", item)  # fmt: skip

    def other(thread: str, n: int) -> CaptureEvent:
        return CaptureEvent("turn_started", "turn/started", "app_server_stream", f"t|{thread}|{n}", thread, "u")

    recall = Recall()
    recall.fresh |= {"fresh", "forgotten"}
    recall.forgot(Forgotten(threads={"forgotten"}, items={("fresh", "old-item")}))
    batch = [
        delta("old", "i", 1), other("old", 2),  # rows from before this process: both
        delta("fresh", "new-item", 3), other("fresh", 4),  # nothing of it forgotten: neither
        delta("fresh", "old-item", 5),  # its item's deltas were forgotten
        other("forgotten", 6), delta("forgotten", "i", 7),  # its other keys were forgotten, not its deltas
        delta("old", "i", 8),  # held by the ledger: never
    ]  # fmt: skip
    looked_up = recall.to_look_up(batch, {"d|old|i|8"})
    assert [ev.key for ev in looked_up] == ["d|old|i|1", "t|old|2", "d|fresh|old-item|5", "t|forgotten|6"]
