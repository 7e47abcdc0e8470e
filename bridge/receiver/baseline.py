"""Newly stored OTEL records → capture events, once each record's thread and turn are known.

Many codex records name no turn (``codex.user_prompt``, ``codex.tool_*``,
``codex.api_request``) but share their OTEL trace with one that does (the
``turn/start`` and ``run_turn`` spans, ``codex.agent_response``). Logs and
traces arrive in separate batches, in either order, so this feeder remembers
what each trace revealed (conversation, turn) and holds a record back until its
trace's turn is known. A record still unresolved after ``pending_ttl_s`` goes
out with the turn that was running at its time in its thread (or none). codex's
token counts (``codex.sse_event`` ``response.completed``) carry no trace at
all: they borrow the trace of the conversation's latest ``codex.api_request``
logged before them (the request whose response they end).

Pure (no I/O, no clock but the one given): the OTLP decoder process runs it on the
records it has just stored (:mod:`bridge.receiver.decoder_main`), so only the few
capture events they make cross to the bridge, never the records, and the bridge's
GIL is not spent on a telemetry flood's mapping (docs/performance.md, session 14).
"""

from __future__ import annotations

import bisect
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bridge.capture.events import CaptureEvent
from bridge.receiver import mapping
from bridge.receiver.records import CLAUDE, CODEX, OtelRecord

log = logging.getLogger("bridge.receiver.baseline")

PENDING_TTL_S = 60.0
MAX_TRACES = 50_000
MAX_PENDING = 20_000
MAX_TURN_STARTS = 512  # per conversation
MAX_CONVERSATIONS = 4096  # conversations whose lenders and turn starts are remembered


@dataclass(slots=True)
class _Trace:
    conversation_id: str | None = None
    turn_id: str | None = None


@dataclass(slots=True)
class _Pending:
    since: float
    records: list[OtelRecord] = field(default_factory=list)


@dataclass(slots=True)
class FeederCounters:
    records_mapped: int = 0
    events_fed: int = 0
    expired: int = 0


class BaselineFeeder:
    def __init__(
        self,
        feed: Callable[[list[CaptureEvent]], None],
        *,
        clock: Callable[[], float] = time.monotonic,
        pending_ttl_s: float = PENDING_TTL_S,
    ) -> None:
        self._feed = feed
        self._clock = clock
        self._ttl = pending_ttl_s
        self._traces: OrderedDict[str, _Trace] = OrderedDict()
        self._pending: OrderedDict[str, _Pending] = OrderedDict()
        self._pending_count = 0
        # conversation → [(time_ns, trace)] of its latest api requests; → sorted [(first time_ns, turn)]
        self._lenders: OrderedDict[str, list[tuple[int, str]]] = OrderedDict()
        self._turn_starts: OrderedDict[str, list[tuple[int, str]]] = OrderedDict()
        self.counters = FeederCounters()

    # ------------------------------------------------------------------ input
    def feed(self, records: Sequence[OtelRecord]) -> None:
        """Newly stored records (never redeliveries): map what can be placed, hold back the rest."""
        batch = sorted((r for r in records if r.provider in (CODEX, CLAUDE)), key=lambda r: r.time_ns or 0)
        if not batch:
            return
        resolved: set[str] = set()
        for record in batch:
            self._learn(record, resolved)
        ready: list[tuple[OtelRecord, str, str | None]] = []
        for record in batch:
            if not mapping.relevant(record):
                continue
            if mapping.lends_trace(record) and record.trace_id and record.conversation_id:
                lenders = _recent(self._lenders, record.conversation_id)
                lenders.append((record.time_ns or 0, record.trace_id))
                del lenders[:-16]
            self._place(record, ready)
        for trace_id in resolved:
            waiting = self._pending.pop(trace_id, None)
            if waiting is None:
                continue
            self._pending_count -= len(waiting.records)
            for record in waiting.records:
                self._place(record, ready)
        self._emit(ready)

    def expire(self, *, everything: bool = False) -> int:
        """Send out records held longer than the TTL (or beyond the memory bound); returns how many.

        ``everything``: all held records, whatever their age (this memory is about to end: the decoder
        process stops), each placed as if its time were up.
        """
        now = self._clock()
        ready: list[tuple[OtelRecord, str, str | None]] = []
        while self._pending:
            key, waiting = next(iter(self._pending.items()))
            if not everything and now - waiting.since < self._ttl and self._pending_count <= MAX_PENDING:
                break
            del self._pending[key]
            self._pending_count -= len(waiting.records)
            for record in waiting.records:
                conversation = self._conversation_of(record)
                if conversation is None:
                    continue  # nothing says which thread it belongs to
                ready.append((record, conversation, self._turn_at(conversation, record.time_ns)))
        self.counters.expired += len(ready)
        self._emit(ready)
        return len(ready)

    @property
    def pending(self) -> int:
        return self._pending_count

    # ------------------------------------------------------------------ resolution
    def _learn(self, record: OtelRecord, resolved: set[str]) -> None:
        learned = mapping.learns(record)
        if learned is None:
            return
        trace_id, conversation, turn = learned
        known = self._traces.get(trace_id)
        if known is None:
            known = self._traces[trace_id] = _Trace()
            while len(self._traces) > MAX_TRACES:
                self._traces.popitem(last=False)
        had_turn = known.turn_id is not None
        known.conversation_id = known.conversation_id or conversation
        known.turn_id = known.turn_id or turn
        if not had_turn and known.turn_id is not None:
            resolved.add(trace_id)

    def _trace_of(self, record: OtelRecord) -> str | None:
        if record.trace_id is not None:
            return record.trace_id
        if mapping.is_token_count(record) and record.conversation_id:
            at = record.time_ns or 0
            lent = [(t, trace) for t, trace in self._lenders.get(record.conversation_id, ()) if t <= at]
            return max(lent)[1] if lent else None
        return None

    def _conversation_of(self, record: OtelRecord) -> str | None:
        if record.conversation_id:
            return record.conversation_id
        trace_id = self._trace_of(record)
        known = self._traces.get(trace_id) if trace_id else None
        return known.conversation_id if known else None

    def _place(self, record: OtelRecord, ready: list[tuple[OtelRecord, str, str | None]]) -> None:
        trace_id = self._trace_of(record)
        known = self._traces.get(trace_id) if trace_id else None
        conversation = record.conversation_id or (known.conversation_id if known else None)
        turn = record.turn_id or (known.turn_id if known else None)
        if conversation is not None and (turn is not None or not mapping.needs_turn(record)):
            ready.append((record, conversation, turn))
            return
        hold = trace_id or (f"conversation:{conversation}" if conversation else None)
        if hold is None:
            return  # neither a thread nor a trace to wait for: it stays in otel_records only
        waiting = self._pending.get(hold)
        if waiting is None:
            waiting = self._pending[hold] = _Pending(self._clock())
        waiting.records.append(record)
        self._pending_count += 1

    def _turn_at(self, conversation: str, time_ns: int | None) -> str | None:
        """The turn running at ``time_ns`` in the thread: the latest one that started by then."""
        starts = self._turn_starts.get(conversation)
        if not starts or time_ns is None:
            return None
        index = bisect.bisect_right(starts, (time_ns, "\uffff")) - 1
        return starts[index][1] if index >= 0 else None

    def _note_turn(self, conversation: str, turn: str, time_ns: int | None) -> None:
        starts = _recent(self._turn_starts, conversation)
        stamp = time_ns or 0
        for i, (t, known) in enumerate(starts):
            if known == turn:
                if stamp < t:
                    del starts[i]
                    break
                return
        bisect.insort(starts, (stamp, turn))
        del starts[:-MAX_TURN_STARTS]

    # ------------------------------------------------------------------ output
    def _emit(self, ready: list[tuple[OtelRecord, str, str | None]]) -> None:
        if not ready:
            return
        ready.sort(key=lambda entry: mapping.order_ns(entry[0]))
        events: list[CaptureEvent] = []
        for record, conversation, turn in ready:
            if turn is not None:
                self._note_turn(conversation, turn, record.time_ns)
            try:
                events.extend(mapping.to_events(record, conversation, turn))
            except Exception:
                log.exception("mapping the OTEL record %s failed; it stays in otel_records", record.name)
        self.counters.records_mapped += len(ready)
        if events:
            self.counters.events_fed += len(events)
            self._feed(events)


def _recent(table: OrderedDict[str, list[tuple[int, str]]], conversation: str) -> list[tuple[int, str]]:
    """The conversation's list, made the most recent; the least recent conversation is forgotten past the bound."""
    found = table.get(conversation)
    if found is None:
        found = table[conversation] = []
        while len(table) > MAX_CONVERSATIONS:
            table.popitem(last=False)
    else:
        table.move_to_end(conversation)
    return found
