"""What the ledger must learn back from the store before it decides a batch.

The ledger holds a bounded window of keys. A key it does not hold can still be
stored when its thread has rows from before this process, or when a trim
forgot it. :class:`Recall` tracks both (pure bookkeeping); :func:`load_stored_keys`
reads back, in one pass per batch, only the keys that may be stored — so a long
stream's new items cost no lookup at all.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Container, Sequence

import msgspec

from bridge.capture.delta_group import DeltaGroup
from bridge.capture.events import STREAM, CaptureEvent
from bridge.capture.ledger import Forgotten, Ledger
from bridge.capture.rows import chunks, ms_or_unknown

_decode = msgspec.json.decode


class Recall:
    """Threads with no rows from before this process, and what trims have forgotten of them."""

    def __init__(self) -> None:
        self.fresh: set[str] = set()
        self.threads: set[str] = set()  # fresh threads whose lifecycle/content keys the ledger forgot
        self.items: set[tuple[str, str]] = set()  # items of fresh threads whose delta keys it forgot

    def forgot(self, forgotten: Forgotten | None) -> None:
        if forgotten is not None:
            self.threads |= forgotten.threads
            self.items |= forgotten.items

    def bound(self, limit: int) -> None:
        """Past ``limit`` names, their threads go back to looking up every key the ledger does not hold."""
        if len(self.items) + len(self.threads) > limit:
            self.fresh -= self.threads | {thread for thread, _ in self.items}
            self.threads.clear()
            self.items.clear()

    def clear(self) -> None:
        for names in (self.fresh, self.threads, self.items):
            names.clear()

    def to_look_up(
        self, events: Sequence[CaptureEvent | DeltaGroup], held: Container[str]
    ) -> list[CaptureEvent | DeltaGroup]:
        """The events whose key is not ``held`` (by the ledger) and may still be in the store.

        One pass over every event of the stream, so the rules are tests of sets, in line: a thread
        with rows from before this process may have any key stored; in a fresh thread only what a
        trim forgot can be (a forgotten item's deltas, a forgotten thread's other keys). A group of
        deltas is one test (they share their item); its keys are checked where it is looked up.
        """
        fresh, stale_threads, stale_items = self.fresh, self.threads, self.items
        out: list[CaptureEvent | DeltaGroup] = []
        for ev in events:
            thread_id = ev.thread_id
            if isinstance(ev, DeltaGroup):
                if thread_id not in fresh or (stale_items and (thread_id, ev.item_id) in stale_items):
                    out.append(ev)
                continue
            if ev.key in held:
                continue
            if thread_id in fresh:
                if ev.kind == "delta":
                    if not stale_items or (thread_id, ev.item_id) not in stale_items:
                        continue
                elif thread_id not in stale_threads:
                    continue
            out.append(ev)
        return out


def load_stored_keys(
    conn: sqlite3.Connection, ledger: Ledger, recall: Recall, events: Sequence[CaptureEvent | DeltaGroup]
) -> None:
    """Teach the ledger the stored keys of this batch it does not hold."""
    fresh = recall.fresh
    for thread_id in {e.thread_id for e in events if e.thread_id not in fresh}:
        known = conn.execute("SELECT 1 FROM ledger_threads WHERE thread_id = ?", (thread_id,)).fetchone()
        if known is None:
            # Nothing of this thread was ever stored: none of its keys can be, no lookups needed.
            conn.execute("INSERT OR IGNORE INTO ledger_threads VALUES (?)", (thread_id,))
            fresh.add(thread_id)
    held = ledger.held
    lookups = recall.to_look_up(events, held)
    if not lookups:
        return
    keys = list({e.key for e in lookups if not isinstance(e, DeltaGroup) and e.kind != "delta"})
    for chunk in chunks(keys):
        marks = ",".join("?" * len(chunk))
        for key, source in conn.execute(f"SELECT key, source FROM ledger WHERE key IN ({marks})", chunk):
            ledger.remember(key, source)
    stored_deltas: dict[tuple[str, str | None], set[tuple[int, str, str]]] = {}

    def stored_of(item: tuple[str, str | None]) -> set[tuple[int, str, str]]:
        known = stored_deltas.get(item)
        if known is None:
            known = stored_deltas[item] = {
                (at, digest, method)
                for method, idents in conn.execute(
                    "SELECT method, idents FROM deltas WHERE thread_id = ? AND item_id = ?", item
                )
                for at, digest in _decode(idents)
            }
        return known

    for e in lookups:
        if isinstance(e, DeltaGroup):
            known = stored_of((e.thread_id, e.item_id))
            for key, at, digest in zip(e.keys, e.emitted, e.digests, strict=True):
                if key not in held and (ms_or_unknown(at), digest, e.method) in known:
                    ledger.remember(key, STREAM)
        elif e.kind == "delta" and (ms_or_unknown(e.emitted_at_ms), e.text_hash, e.method) in stored_of(
            (e.thread_id, e.item_id)
        ):
            ledger.remember(e.key, e.source)
