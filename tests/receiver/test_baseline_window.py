"""The baseline's events reach the capture a window at a time: one transaction for a flood's requests."""

from __future__ import annotations

import anyio

from bridge.capture.events import CaptureEvent
from bridge.receiver import baseline_window
from bridge.receiver.baseline import BaselineFeeder
from bridge.receiver.baseline_window import BaselineWindow
from tests.crosssource.support import fixture_records, load_fixture

CODEX = load_fixture("codex_chat_shell.json")


def codex_events() -> list[CaptureEvent]:
    out: list[CaptureEvent] = []
    BaselineFeeder(out.extend).feed(fixture_records(CODEX))
    assert len(out) > 10
    return out


async def test_events_offered_within_a_window_are_fed_as_one_batch() -> None:
    """Requests answered during a flood reach the capture pipeline together: one feed per window, none lost."""
    events = codex_events()
    batches: list[list[CaptureEvent]] = []
    window = BaselineWindow(batches.append)
    async with anyio.create_task_group() as tg:
        tg.start_soon(window.run)
        for at in range(0, len(events), 3):  # a request's events at a time, as the receiver hands them on
            window.offer(events[at : at + 3])
        assert batches == [], "nothing is fed before the window closes"
        with anyio.fail_after(5):
            while not batches:
                await anyio.sleep(0.005)
        window.offer([])  # a later request that placed nothing: an empty window feeds nothing
        await anyio.sleep(baseline_window.COALESCE_S * 3)
        tg.cancel_scope.cancel()
    assert batches == [events]


def test_a_flush_feeds_what_was_offered_at_once() -> None:
    """When the bridge stops, what the receiver handed on in the last window reaches the capture before it ends."""
    events = codex_events()
    batches: list[list[CaptureEvent]] = []
    window = BaselineWindow(batches.append)
    window.offer(events)
    assert batches == []
    window.flush()
    assert batches == [events]
    window.flush()  # nothing left: nothing fed twice
    assert len(batches) == 1


def test_a_failing_capture_does_not_end_the_window() -> None:
    """A feed that raises is logged; the next window still feeds (the records stay in otel_records)."""
    events = codex_events()
    seen: list[list[CaptureEvent]] = []

    def feed(batch: list[CaptureEvent]) -> None:
        seen.append(batch)
        if len(seen) == 1:
            raise RuntimeError("boom")

    window = BaselineWindow(feed)
    window.offer(events[:2])
    window.flush()
    window.offer(events[2:4])
    window.flush()
    assert seen == [events[:2], events[2:4]]
