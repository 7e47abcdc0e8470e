"""The stream's deltas a run at a time: the hot path's unit of work (pure, no I/O).

Nine frames in ten of a codex stream are deltas, and consecutive ones almost
always belong to one item. Handling each as a full :class:`CaptureEvent`
(a twenty-field struct, a decision, an :class:`~bridge.capture.rows.Applied`,
its own live-event prefix) cost ~5 µs a delta on the busiest thread of the
bridge. A :class:`DeltaGroup` holds a run of them as parallel lists instead:
what they share (method, thread, turn, item, the key's prefix) once, and per
delta only its time, its redacted text, its digest and its key — the same key
:func:`~bridge.capture.ledger.delta_key` gives, so dedup, the store's rows and
the live events are exactly what the per-event path produces
(``tests/capture/test_delta_group.py`` pins that, byte for byte).

Whatever is not the common case leaves the fast path as plain events
(:meth:`DeltaGroup.events`): a key the ledger already holds, a delta of an
item whose start was never seen, the baseline's events.
"""

from __future__ import annotations

from bridge.capture.events import STREAM, CaptureEvent
from bridge.capture.ledger import Outcome
from bridge.redact import redact_text, text_may_hold_secrets


class DeltaGroup:
    """Consecutive stream deltas of one item and method, decoded, keyed and redacted."""

    __slots__ = ("digests", "emitted", "item_id", "key_prefix", "keys", "method", "texts", "thread_id", "turn_id")

    def __init__(self, method: str, thread_id: str, turn_id: str | None, item_id: str) -> None:
        self.method = method
        self.thread_id = thread_id
        self.turn_id = turn_id
        self.item_id = item_id
        self.key_prefix = f"{method}|{thread_id}|{item_id}|"
        self.emitted: list[int | None] = []
        self.texts: list[str] = []  # redacted once the run is complete (mask)
        self.digests: list[str] = []  # of the text as codex sent it (part of the key)
        self.keys: list[str] = []

    def mask(self) -> None:
        """Redact the texts, each on its own (as the per-event path does), when any of them may need it.

        One scan of the run's joined text replaces a check per delta: a run of plain text (nearly
        every one) is left as it is.
        """
        texts = self.texts
        if text_may_hold_secrets("".join(texts)):
            self.texts = [redact_text(text) for text in texts]

    def event(self, index: int) -> CaptureEvent:
        """Delta ``index`` as the per-event path has it (:func:`~bridge.capture.normalize.normalize`)."""
        return CaptureEvent(
            "delta", self.method, STREAM, self.keys[index], self.thread_id, self.turn_id, self.item_id,
            self.emitted[index], self.texts[index], self.digests[index],
        )  # fmt: skip

    def events(self, start: int = 0) -> list[CaptureEvent]:
        return [self.event(i) for i in range(start, len(self.keys))]


class AppliedDeltas:
    """The leading ``count`` deltas of a group, accepted and stored with ordinals ``first``, ``first + 1``…"""

    __slots__ = ("count", "first", "group")

    outcome = Outcome("accepted", STREAM, None)

    def __init__(self, group: DeltaGroup, first: int, count: int) -> None:
        self.group = group
        self.first = first
        self.count = count
