"""Captured content in SQLite: one transaction per batch, decided by the ledger.

:meth:`CaptureStore.apply` runs on the store's single writer (call it from a
worker thread): it loads the ledger keys of the batch it has not seen, decides
every event in order, writes what was accepted — deltas as they arrived, so a
crash mid-item still leaves the partial item — and the decision log, and
commits once. Only then do the events count as captured and go to the host.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import overload

import msgspec

from bridge.capture import reads, row_updates, upkeep
from bridge.capture.decisions import replay_logged_decisions
from bridge.capture.delta_group import AppliedDeltas, DeltaGroup
from bridge.capture.events import OTEL, STREAM, CaptureEvent
from bridge.capture.ledger import Ledger, Outcome, item_content_key
from bridge.capture.reads import CapturedThread, DedupDecision, ThreadSummary
from bridge.capture.recall import Recall, load_stored_keys
from bridge.capture.rows import ACCEPTED, LOGGED_WHEN_ACCEPTED, Applied, TxBatch, prompt_item_id
from bridge.clock import now_ms
from bridge.store.db import Database

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.decode

DECISIONS_KEPT = 10_000
CACHED_PER_KIND = 4_096  # ordinals and known rows kept per cache; past it the cache restarts from the store
_FINAL_TURN = ("completed", "interrupted", "failed")


# The stream's userMessage of a turn (not the baseline's synthetic prompt): an index lookup (items_turn).
TURN_USER_MESSAGE = (
    "SELECT item_id FROM items WHERE thread_id = ? AND turn_id = ? AND type = 'userMessage' "
    "AND item_id != ? ORDER BY ord LIMIT 1"
)


class CaptureStore:
    def __init__(self, db: Database, preferred_source: str = "app_server_stream") -> None:
        self.db = db
        self.ledger = Ledger(preferred_source)
        self._delta_ord: dict[tuple[str, str], int] = {}
        self._item_ord: dict[str, int] = {}
        self._turn_ord: dict[str, int] = {}
        self._threads_known: set[str] = set()
        self._thread_sources: dict[str, frozenset[str]] = {}  # threads.sources as stored
        self._turns_known: set[tuple[str, str]] = set()
        self._recall = Recall()  # which keys the ledger does not hold may still be stored
        self._batches = 0
        self.counts = {"accepted": 0, "duplicate": 0, "replaced": 0, "dropped": 0}
        db.on_replaced(self._forget_caches)  # a damaged store was replaced: nothing cached from it holds

    # ------------------------------------------------------------------ writing
    @overload
    def apply(self, events: Sequence[CaptureEvent], at_ms: int | None = None) -> list[Applied]: ...

    @overload
    def apply(
        self, events: Sequence[CaptureEvent | DeltaGroup], at_ms: int | None = None
    ) -> list[Applied | AppliedDeltas]: ...

    def apply(
        self, events: Sequence[CaptureEvent | DeltaGroup], at_ms: int | None = None
    ) -> list[Applied] | list[Applied | AppliedDeltas]:
        """Decide and store a batch in one transaction; on failure nothing of it counts.

        A :class:`DeltaGroup` (the stream's deltas, from the pipeline) comes back as one
        :class:`AppliedDeltas` for the deltas it accepted at once; a batch of plain events comes
        back as plain :class:`Applied`.

        The in-memory caches (ledger keys, ordinals) were updated as the batch
        was decided, so a failed transaction drops them: the store is the truth
        and they are rebuilt from it, and the same batch can be applied again.
        """
        at = now_ms() if at_ms is None else at_ms
        counts_before = dict(self.counts)
        try:
            return self.db.write(lambda conn: self._apply(conn, events, at))
        except BaseException:
            self.counts.update(counts_before)
            self._forget_caches()
            raise

    def _forget_caches(self) -> None:
        self.ledger = Ledger(self.ledger.preferred_source, self.ledger.capacity)
        for cache in (self._delta_ord, self._item_ord, self._turn_ord, self._threads_known, self._turns_known,
                      self._thread_sources):  # fmt: skip
            cache.clear()
        self._recall.clear()

    def _apply(
        self, conn: sqlite3.Connection, events: Sequence[CaptureEvent | DeltaGroup], at: int
    ) -> list[Applied | AppliedDeltas]:
        load_stored_keys(conn, self.ledger, self._recall, events)
        batch = TxBatch()
        for entry in events:
            rest: Sequence[CaptureEvent] | tuple[CaptureEvent]
            if isinstance(entry, DeltaGroup):  # a run of the stream's deltas: its new keys are taken in one go
                taken = self._take_run(conn, batch, entry, at)
                if taken == len(entry.keys):
                    continue
                rest = entry.events(taken)  # from the first key the ledger holds on, one at a time
            else:
                rest = (entry,)
            for ev in rest:
                self._decide(conn, batch, ev, at)
        self.counts["accepted"] += batch.accepted_deltas
        self._write_batch(conn, batch, at)
        self._recall.forgot(self.ledger.trim())  # forgotten keys are looked up again when they come back
        self._bound_caches()
        return batch.applied

    def _take_run(self, conn: sqlite3.Connection, batch: TxBatch, group: DeltaGroup, at: int) -> int:
        """Accept the leading deltas of ``group`` whose keys the ledger does not hold; how many."""
        held = self.ledger.held
        taken = 0
        for key in group.keys:
            if key in held:
                break
            held[key] = STREAM
            taken += 1
        if not taken:
            return 0
        thread_id, item_id = group.thread_id, group.item_id
        sources = batch.touched.get(thread_id)
        if sources is None:
            sources = self._enter_thread(conn, batch, group.event(0), at)
        sources.add(STREAM)
        ident = (thread_id, item_id)
        current = self._delta_ord.get(ident)
        first = self._next_delta(conn, group.event(0), at) if current is None else current + 1
        last = self._delta_ord[ident] = first + taken - 1
        batch.run_for(thread_id, item_id, group.method, first).add_group(last, group, taken)
        batch.accepted_deltas += taken
        batch.applied.append(AppliedDeltas(group, first, taken))
        return taken

    def _decide(self, conn: sqlite3.Connection, batch: TxBatch, ev: CaptureEvent, at: int) -> None:
        """Decide one event against the ledger and write what it changes."""
        held = self.ledger.held
        key = ev.key
        if ev.kind == "delta" and key not in held:  # a new delta outside a run (the baseline's, a run's rest)
            source = ev.source
            held[key] = source
            batch.accepted_deltas += 1
            sources = batch.touched.get(ev.thread_id)
            if sources is None:
                sources = self._enter_thread(conn, batch, ev, at)
            sources.add(source)
            ident = (ev.thread_id, ev.item_id)
            current = self._delta_ord.get(ident)  # type: ignore[arg-type]
            if current is None:
                seq = self._next_delta(conn, ev, at)
            else:
                seq = self._delta_ord[ident] = current + 1  # type: ignore[index]
            batch.run_for(ev.thread_id, ev.item_id, ev.method, seq).add(seq, ev)
            batch.applied.append(Applied(ev, ACCEPTED.get(source) or Outcome("accepted", source, None), seq))
            return
        item = ev.item
        if item is not None and item.type == "userMessage" and ev.turn_id and ev.item_id:
            ev = self._join_prompt(conn, ev, at)  # the baseline's prompt and the stream's userMessage: one item
            key = ev.key
        stored = held.get(key)
        outcome = self.ledger.decide(key, ev.source)
        decision = outcome.decision
        self.counts[decision] += 1
        if decision != "accepted" or ev.kind in LOGGED_WHEN_ACCEPTED:  # the rest is counted, not logged
            batch.decisions.append(
                (at, key, decision, ev.source, stored, outcome.chosen_source, outcome.replaced_source,
                 self.ledger.preferred_source)
            )  # fmt: skip
        if decision == "duplicate":
            return
        sources = batch.touched.get(ev.thread_id)
        if sources is None:
            sources = self._enter_thread(conn, batch, ev, at)
        sources.add(ev.source)
        if decision == "dropped":
            if ev.kind == "item_completed" and ev.item_id:
                row_updates.mark_seen(conn, ev)
            if ev.usage is not None and ev.item is not None and ev.item_id:
                row_updates.merge_extra(conn, ev)  # what only the losing source knows still counts
            return
        seq = 0
        kind = ev.kind
        if kind == "delta":  # a delta another source held: keep this copy too
            seq = self._next_delta(conn, ev, at)
            batch.run_for(ev.thread_id, ev.item_id, ev.method, seq).add(seq, ev)
        else:
            batch.ledger_rows.append((key, ev.source, at))
            if kind == "item_completed" or kind == "item_started":
                self._write_item(conn, ev, at, final=kind == "item_completed")
                if ev.usage is not None:
                    row_updates.merge_extra(conn, ev)
            elif kind in ("turn_started", "turn_completed", "usage", "error"):
                self._write_turn(conn, batch, ev, at)
            elif kind == "thread":
                conn.execute(
                    "UPDATE threads SET title = coalesce(?, title), cwd = coalesce(?, cwd), "
                    "created_at_ms = coalesce(created_at_ms, ?) WHERE thread_id = ?",
                    (ev.title, ev.cwd, ev.emitted_at_ms, ev.thread_id),
                )
        batch.applied.append(Applied(ev, outcome, seq))

    def _enter_thread(self, conn: sqlite3.Connection, batch: TxBatch, ev: CaptureEvent, at: int) -> set[str]:
        """The first event of a thread in this batch: its row exists from here on; the batch's sources of it."""
        self._ensure_thread(conn, ev, at)
        sources: set[str] = set()
        batch.touched[ev.thread_id] = sources
        return sources

    def _write_batch(self, conn: sqlite3.Connection, batch: TxBatch, at: int) -> None:
        """The rows a batch collected: delta runs, ledger keys, the baseline's usage sums, threads' times and
        sources, decisions."""
        if batch.runs:
            conn.executemany(
                "INSERT OR REPLACE INTO deltas VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [run.row(at) for run in batch.runs]
            )
        if batch.ledger_rows:
            conn.executemany("INSERT OR REPLACE INTO ledger VALUES (?, ?, ?)", batch.ledger_rows)
        for (thread_id, turn_id), counts in batch.otel_usage.items():
            row_updates.add_baseline_usage(conn, thread_id, turn_id, counts, at)
        for thread_id, sources in batch.touched.items():
            self._touch_thread(conn, thread_id, sources, at)
        if batch.decisions:
            conn.executemany(
                "INSERT INTO decisions (at_ms, key, decision, incoming_source, stored_source, chosen_source, "
                "replaced_source, preferred_source) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                batch.decisions,
            )
        self._batches += 1
        if self._batches % 50 == 0:
            conn.execute("DELETE FROM decisions WHERE id <= (SELECT max(id) FROM decisions) - ?", (DECISIONS_KEPT,))

    def _bound_caches(self) -> None:
        """Keep memory flat over a long day: a cache past its bound is emptied and refills from the store.

        Each of them only saves a lookup; a miss reads the same value back
        (ordinals from ``max(...)``, known rows by ``INSERT OR IGNORE``).
        """
        for cache in (self._delta_ord, self._item_ord, self._turn_ord, self._threads_known, self._turns_known,
                      self._thread_sources):  # fmt: skip
            if len(cache) > CACHED_PER_KIND:
                cache.clear()
        self._recall.bound(CACHED_PER_KIND)

    def _ensure_thread(self, conn: sqlite3.Connection, ev: CaptureEvent, at: int) -> None:
        if ev.thread_id not in self._recall.fresh:
            conn.execute("INSERT OR IGNORE INTO ledger_threads VALUES (?)", (ev.thread_id,))
        if ev.thread_id in self._threads_known:
            return
        conn.execute(
            "INSERT OR IGNORE INTO threads (thread_id, provider, created_at_ms, updated_at_ms, captured_at_ms, "
            "sources) VALUES (?, ?, ?, ?, ?, '[]')",
            (ev.thread_id, ev.provider, ev.emitted_at_ms or at, ev.emitted_at_ms or at, at),
        )
        self._threads_known.add(ev.thread_id)

    def _touch_thread(self, conn: sqlite3.Connection, thread_id: str, sources: set[str], at: int) -> None:
        """The thread was updated now, by ``sources``: its row's time, and its sources when one is new.

        The row's sources are cached (only this writes them), so a batch of a source the thread
        already has costs one small UPDATE, not a read and a JSON round trip.
        """
        known = self._thread_sources.get(thread_id)
        if known is not None and sources <= known:
            conn.execute(
                "UPDATE threads SET updated_at_ms = max(updated_at_ms, ?) WHERE thread_id = ?", (at, thread_id)
            )
            return
        row = conn.execute("SELECT sources FROM threads WHERE thread_id = ?", (thread_id,)).fetchone()
        if row is None:
            return
        merged = frozenset(_decode(row[0])) | sources
        conn.execute(
            "UPDATE threads SET updated_at_ms = max(updated_at_ms, ?), sources = ? WHERE thread_id = ?",
            (at, _encode(sorted(merged)).decode(), thread_id),
        )
        self._thread_sources[thread_id] = merged

    def _next_ord(self, conn: sqlite3.Connection, cache: dict[str, int], table: str, thread_id: str) -> int:
        current = cache.get(thread_id)
        if current is None:
            row = conn.execute(f"SELECT coalesce(max(ord), -1) FROM {table} WHERE thread_id = ?", (thread_id,))
            current = int(row.fetchone()[0])
        cache[thread_id] = current + 1
        return current + 1

    def _next_delta(self, conn: sqlite3.Connection, ev: CaptureEvent, at: int) -> int:
        assert ev.item_id is not None
        ident = (ev.thread_id, ev.item_id)
        current = self._delta_ord.get(ident)
        if current is None:
            row = conn.execute(
                "SELECT coalesce(max(last_ordinal), 0) FROM deltas WHERE thread_id = ? AND item_id = ?", ident
            ).fetchone()
            current = int(row[0])
            exists = conn.execute("SELECT 1 FROM items WHERE thread_id = ? AND item_id = ?", ident).fetchone()
            if exists is None:  # a delta for an item whose start we never saw: keep the partial item
                self._write_item(conn, ev, at, final=False)
        self._delta_ord[ident] = current + 1
        return current + 1

    def _write_item(self, conn: sqlite3.Connection, ev: CaptureEvent, at: int, *, final: bool) -> None:
        item = ev.item
        row = conn.execute(
            "SELECT seen_by FROM items WHERE thread_id = ? AND item_id = ?", (ev.thread_id, ev.item_id)
        ).fetchone()
        if ev.turn_id:
            self._ensure_turn(conn, ev, at)
        if row is None:
            ord_ = self._next_ord(conn, self._item_ord, "items", ev.thread_id)
            assert ev.item_id is not None
            self._delta_ord.setdefault((ev.thread_id, ev.item_id), 0)  # a new item has no deltas yet
            conn.execute(
                "INSERT INTO items (thread_id, item_id, turn_id, ord, type, status, text, output, exit_code, "
                "command, started_at_ms, completed_at_ms, source, seen_by, captured_at_ms) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    ev.thread_id, ev.item_id, ev.turn_id, ord_,
                    item.type if item else None,
                    (item.status if item else None) or ("completed" if final else "inProgress"),
                    item.text if item and final else None,
                    item.output if item and final else None,
                    item.exit_code if item else None,
                    item.command if item else None,
                    (item.started_at_ms if item else None) or ev.emitted_at_ms,
                    (item.completed_at_ms if item else None) or (ev.emitted_at_ms if final else None),
                    ev.source, _encode([ev.source]).decode(), at,
                ),
            )  # fmt: skip
            return
        seen = sorted(set(_decode(row[0])) | {ev.source})
        if final and item is not None:
            conn.execute(
                "UPDATE items SET turn_id = coalesce(?, turn_id), type = coalesce(?, type), status = ?, text = ?, "
                "output = ?, exit_code = coalesce(?, exit_code), command = coalesce(?, command), "
                "started_at_ms = coalesce(started_at_ms, ?), completed_at_ms = coalesce(?, completed_at_ms), "
                "source = ?, seen_by = ? WHERE thread_id = ? AND item_id = ?",
                (
                    ev.turn_id, item.type, item.status or "completed", item.text, item.output, item.exit_code,
                    item.command, item.started_at_ms, item.completed_at_ms or ev.emitted_at_ms, ev.source,
                    _encode(seen).decode(), ev.thread_id, ev.item_id,
                ),
            )  # fmt: skip
        else:
            conn.execute(
                "UPDATE items SET type = coalesce(type, ?), command = coalesce(command, ?), seen_by = ? "
                "WHERE thread_id = ? AND item_id = ?",
                (
                    item.type if item else None,
                    item.command if item else None,
                    _encode(seen).decode(),
                    ev.thread_id,
                    ev.item_id,
                ),
            )

    def _join_prompt(self, conn: sqlite3.Connection, ev: CaptureEvent, at: int) -> CaptureEvent:
        """Give the baseline's id-less user prompt and the stream's userMessage of a turn one identity.

        The baseline's prompt (item id ``userprompt:<turn>``) takes the id of the
        stream's userMessage of that turn when there is one; a stream userMessage
        arriving after a baseline-only prompt adopts that row, and its content is
        then decided against the baseline's like any shared item. Only userMessage
        events get here (two per turn): the stream pays one key lookup per turn.
        """
        assert ev.turn_id is not None and ev.item_id is not None
        thread_id = ev.thread_id
        synthetic = prompt_item_id(ev.turn_id)
        if ev.item_id == synthetic:
            row = conn.execute(TURN_USER_MESSAGE, (thread_id, ev.turn_id, synthetic)).fetchone()
            if row is None:
                return ev
            key = item_content_key(thread_id, row[0])
            self._load_key(conn, key)
            return msgspec.structs.replace(ev, item_id=row[0], key=key)
        row = conn.execute(
            "SELECT source FROM items WHERE thread_id = ? AND item_id = ?", (thread_id, synthetic)
        ).fetchone()
        if row is None:
            return ev
        holder = row[0]
        taken = conn.execute("SELECT 1 FROM items WHERE thread_id = ? AND item_id = ?", (thread_id, ev.item_id))
        if taken.fetchone() is None:
            conn.execute(
                "UPDATE items SET item_id = ? WHERE thread_id = ? AND item_id = ?", (ev.item_id, thread_id, synthetic)
            )
        else:
            conn.execute("DELETE FROM items WHERE thread_id = ? AND item_id = ?", (thread_id, synthetic))
        key = item_content_key(thread_id, ev.item_id)
        self._load_key(conn, key)
        if key not in self.ledger:  # the baseline's copy now holds the stream item's content key
            self.ledger.remember(key, holder)
            conn.execute("INSERT OR REPLACE INTO ledger VALUES (?, ?, ?)", (key, holder, at))
        return ev

    def _load_key(self, conn: sqlite3.Connection, key: str) -> None:
        if key not in self.ledger:
            row = conn.execute("SELECT source FROM ledger WHERE key = ?", (key,)).fetchone()
            if row is not None:
                self.ledger.remember(key, row[0])

    def _ensure_turn(self, conn: sqlite3.Connection, ev: CaptureEvent, at: int) -> None:
        assert ev.turn_id is not None
        ident = (ev.thread_id, ev.turn_id)
        if ident in self._turns_known:
            return
        exists = conn.execute("SELECT 1 FROM turns WHERE thread_id = ? AND turn_id = ?", ident).fetchone()
        self._turns_known.add(ident)
        if exists is None:
            ord_ = self._next_ord(conn, self._turn_ord, "turns", ev.thread_id)
            conn.execute(
                "INSERT INTO turns (thread_id, turn_id, ord, status, started_at_ms, source, last_event_at_ms, "
                "captured_at_ms) VALUES (?, ?, ?, 'inProgress', ?, ?, ?, ?)",
                (ev.thread_id, ev.turn_id, ord_, ev.emitted_at_ms, ev.source, at, at),
            )

    def _write_turn(self, conn: sqlite3.Connection, batch: TxBatch, ev: CaptureEvent, at: int) -> None:
        if not ev.turn_id:
            return
        self._ensure_turn(conn, ev, at)
        if ev.kind == "turn_completed":
            conn.execute(
                "UPDATE turns SET status = ?, error = coalesce(?, error), completed_at_ms = ?, last_event_at_ms = ? "
                "WHERE thread_id = ? AND turn_id = ?",
                (ev.turn_status or "completed", ev.turn_error, ev.emitted_at_ms or at, at, ev.thread_id, ev.turn_id),
            )
        elif ev.kind == "usage" and ev.source == OTEL:
            batch.add_otel_usage(ev.thread_id, ev.turn_id, ev.usage)  # summed, written once a turn (_write_batch)
        elif ev.kind == "usage":
            usage = _encode(ev.usage).decode()
            conn.execute(  # the baseline's sums (usage.otel) survive the stream's update
                "UPDATE turns SET usage = CASE WHEN json_extract(usage, '$.otel') IS NULL THEN ? "
                "ELSE json_set(?, '$.otel', json(json_extract(usage, '$.otel'))) END, last_event_at_ms = ? "
                "WHERE thread_id = ? AND turn_id = ?",
                (usage, usage, at, ev.thread_id, ev.turn_id),
            )
        elif ev.kind == "error" and ev.turn_error:
            conn.execute(
                "UPDATE turns SET error = ?, last_event_at_ms = ? WHERE thread_id = ? AND turn_id = ?",
                (ev.turn_error, at, ev.thread_id, ev.turn_id),
            )

    def mark_incomplete(self, reason_at_ms: int | None = None, idle_before_ms: int | None = None) -> list[str]:
        """Mark turns still in progress as ``incomplete`` (all, or those silent since ``idle_before_ms``)."""
        marked = self.db.write(lambda conn: upkeep.mark_incomplete(conn, idle_before_ms))
        self._turns_known.update(marked)  # a late turn/completed must still find (and update) the row
        return [f"{t}/{u}" for t, u in marked]

    def threads_with_open_turns(self, within_ms: int = 86_400_000) -> list[str]:
        """Threads with a turn still in progress or marked incomplete, captured recently."""
        return self.db.read(lambda conn: upkeep.threads_with_open_turns(conn, now_ms() - within_ms))

    # ------------------------------------------------------------------ reading
    def list_threads(self, limit: int, since_ms: int | None) -> list[ThreadSummary]:
        """Captured threads, newest first; ``since_ms`` filters on their last update."""
        return self.db.read(lambda conn: reads.list_threads(conn, limit, since_ms))

    def get_thread(self, thread_id: str) -> CapturedThread | None:
        """A thread with its turns and items in order; items still streaming carry their text so far."""
        return self.db.read(lambda conn: reads.get_thread(conn, thread_id))

    def delete_thread(self, thread_id: str) -> bool:
        deleted = self.db.write(lambda conn: upkeep.delete_thread(conn, thread_id))
        self._threads_known.discard(thread_id)
        self._thread_sources.pop(thread_id, None)
        self._turns_known = {k for k in self._turns_known if k[0] != thread_id}
        self._item_ord.pop(thread_id, None)
        self._turn_ord.pop(thread_id, None)
        for ident in [k for k in self._delta_ord if k[0] == thread_id]:
            del self._delta_ord[ident]
        return deleted

    def apply_retention(self, older_than_ms: int) -> int:
        """Delete content captured before ``older_than_ms``; returns threads removed."""
        removed = self.db.write(lambda conn: upkeep.apply_retention(conn, older_than_ms))
        for cache in (self._threads_known, self._turns_known, self._item_ord, self._turn_ord, self._delta_ord,
                      self._thread_sources):  # fmt: skip
            cache.clear()  # they may name rows that are gone
        return removed

    def decision_log(self, limit: int) -> list[DedupDecision]:
        """The newest ``limit`` decisions, newest first."""
        return self.db.read(lambda conn: reads.decision_log(conn, limit))

    def decisions_replay_consistent(self, window_start_ms: int) -> tuple[bool, int, str]:
        """Re-decide every logged decision from its inputs; (all equal, how many, first difference)."""
        return self.db.read(lambda conn: replay_logged_decisions(conn, window_start_ms))
