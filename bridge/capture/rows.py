"""Small pieces of the capture write path: the delta-run row, the applied event, prompt item ids."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from bridge.capture.delta_group import AppliedDeltas, DeltaGroup
from bridge.capture.events import CaptureEvent
from bridge.capture.ledger import Outcome

_encode = msgspec.json.Encoder().encode

PROMPT_ITEM_PREFIX = "userprompt:"


def prompt_item_id(anchor: str) -> str:
    """The item id of a user prompt the OTEL baseline saw without an item id (``anchor``: its turn)."""
    return PROMPT_ITEM_PREFIX + anchor


# Accepted events of these kinds go to the decision log (with every duplicate,
# replaced and dropped one); accepted deltas, status changes and the like are
# only counted, so the bounded log keeps what an operator needs to see.
LOGGED_WHEN_ACCEPTED = frozenset({"thread", "turn_started", "turn_completed", "item_started", "item_completed"})


def ms_or_unknown(ms: int | None) -> int:
    return -1 if ms is None else ms


ACCEPTED = {source: Outcome("accepted", source, None) for source in ("app_server_stream", "otel")}


class DeltaRun:
    """Consecutive deltas of one item and method in a batch: stored as one row."""

    __slots__ = ("first", "idents", "item_id", "last", "method", "texts", "thread_id")

    def __init__(self, thread_id: str, item_id: str | None, method: str, first: int) -> None:
        self.thread_id, self.item_id, self.method = thread_id, item_id, method
        self.first = self.last = first
        self.texts: list[str] = []
        self.idents: list[tuple[int, str]] = []

    def add(self, seq: int, ev: CaptureEvent) -> None:
        self.last = seq
        self.texts.append(ev.delta or "")
        emitted = ev.emitted_at_ms
        self.idents.append((-1 if emitted is None else emitted, ev.text_hash))

    def add_group(self, last: int, group: DeltaGroup, count: int) -> None:
        """The first ``count`` deltas of ``group``, the last of them with ordinal ``last``."""
        self.last = last
        if count == len(group.keys):
            texts, emitted, digests = group.texts, group.emitted, group.digests
        else:
            texts, emitted, digests = group.texts[:count], group.emitted[:count], group.digests[:count]
        self.texts.extend(texts)
        if None in emitted:
            pairs = zip(emitted, digests, strict=True)
            self.idents.extend([(-1 if at is None else at, digest) for at, digest in pairs])
        else:  # the usual case: pairs made in C, no Python step per delta
            self.idents.extend(zip(emitted, digests, strict=True))  # type: ignore[arg-type]

    def row(self, at: int) -> tuple[Any, ...]:
        return (self.thread_id, self.item_id, self.first, self.last, self.method, "".join(self.texts),
                _encode(self.idents).decode(), at)  # fmt: skip


class TxBatch:
    """What deciding one batch collects for its transaction: the applied events and the rows to write."""

    __slots__ = ("accepted_deltas", "applied", "decisions", "ledger_rows", "open_runs", "otel_usage", "runs", "touched")

    def __init__(self) -> None:
        self.applied: list[Applied | AppliedDeltas] = []
        self.decisions: list[tuple[Any, ...]] = []
        self.ledger_rows: list[tuple[str, str, int]] = []
        self.runs: list[DeltaRun] = []  # deltas are written as runs per item and method, in arrival order
        self.open_runs: dict[tuple[str, str | None], DeltaRun] = {}
        self.touched: dict[str, set[str]] = {}  # thread -> the sources this batch saw of it
        self.accepted_deltas = 0  # counted, not logged
        # (thread, turn) -> the baseline's usage counts this batch adds to the turn's usage.otel (one write a turn)
        self.otel_usage: dict[tuple[str, str], dict[str, int | float]] = {}

    def add_otel_usage(self, thread_id: str, turn_id: str, usage: dict[str, Any] | None) -> None:
        """Sum one API request's numeric counts into what the batch adds to the turn."""
        sums = self.otel_usage.setdefault((thread_id, turn_id), {})
        for name, value in (usage or {}).items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                sums[name] = sums.get(name, 0) + value

    def run_for(self, thread_id: str, item_id: str | None, method: str, first: int) -> DeltaRun:
        """The item's open run of ``method`` deltas; a new one (starting at ordinal ``first``) otherwise."""
        ident = (thread_id, item_id)
        run = self.open_runs.get(ident)
        if run is None or run.method != method:
            run = self.open_runs[ident] = DeltaRun(thread_id, item_id, method, first)
            self.runs.append(run)
        return run


class Applied(msgspec.Struct, gc=False):
    """A decided event as the store kept it (one per accepted, replaced or dropped event).

    Not tracked by the cyclic collector (it never holds a cycle): a stream makes one per frame.
    """

    event: CaptureEvent
    outcome: Outcome
    sequence_id: int  # the per-item delta ordinal; 0 for other events


def chunks(values: Sequence[str], size: int = 500) -> Iterable[Sequence[str]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]
