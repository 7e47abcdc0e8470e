"""Deterministic deduplication: keys and decisions, with no I/O.

Identity
    Lifecycle events are keyed by what they are about: ``thread/started|T``,
    ``turn/started|T|U``, ``turn/completed|T|U``, ``item/started|T|I`` and, for
    an item's final content, ``item|T|I`` — the same key whichever source
    reports it, which is what makes cross-source dedup possible. Deltas carry
    no id, so a delta is ``METHOD|T|I|emittedAtMs|hash(text)``: the same frame
    twice is a duplicate; two genuinely identical deltas of one item in the
    same millisecond merge (an accepted risk: codex would have to emit the same
    text twice within 1 ms). Other thread-scoped notifications are keyed by
    method, thread, emittedAtMs and a hash of their params.

Decisions (docs/protocol.md §3.5)
    accepted   the key is new;
    duplicate  the same source sent it again (not stored or emitted again);
    replaced   another source had it, and the incoming one wins by precedence;
    dropped    another source had it, and the stored one wins.
    The outcome depends only on (stored source, incoming source, precedence),
    so replaying the inputs of the decision log gives the same decisions.
"""

from __future__ import annotations

import zlib
from itertools import islice
from typing import Literal

import msgspec

# Keys held in memory (each ~200 bytes with its dict slot); past it the oldest half is forgotten and
# looked up in the store's ledger table when seen again. Bounds the bridge's memory over a long day.
CAPACITY = 20_000

_crc32 = zlib.crc32

Decision = Literal["accepted", "duplicate", "replaced", "dropped"]

# The streamed pieces of an item: their keys carry the item (``METHOD|T|I|…``), so the ledger can tell which
# items lost keys when it forgets some.
DELTA_METHODS = frozenset(
    {
        "item/agentMessage/delta",
        "item/plan/delta",
        "item/reasoning/summaryTextDelta",
        "item/reasoning/textDelta",
        "item/commandExecution/outputDelta",
        "item/fileChange/outputDelta",
    }
)


def text_hash(text: str | bytes) -> str:
    """A short, stable digest of a text: CRC-32 plus the length.

    It only has to tell apart the deltas of one item emitted in the same
    millisecond (or the params of one thread's events in the same
    millisecond), so a cryptographic hash would be wasted on the hot path.
    """
    data = text.encode() if isinstance(text, str) else text
    return "%08x%x" % (_crc32(data), len(data))  # noqa: UP031 (printf-style: a third cheaper than an f-string)


def lifecycle_key(method: str, thread_id: str, *ids: str | None) -> str:
    return "|".join((method, thread_id, *(i or "" for i in ids)))


def item_content_key(thread_id: str, item_id: str) -> str:
    return f"item|{thread_id}|{item_id}"


def delta_key(method: str, thread_id: str, item_id: str, emitted_at_ms: int | None, digest: str) -> str:
    """The key of a delta whose text hashes to ``digest`` (:func:`text_hash`)."""
    return f"{method}|{thread_id}|{item_id}|{emitted_at_ms if emitted_at_ms is not None else ''}|{digest}"


def event_key(method: str, thread_id: str, emitted_at_ms: int | None, raw_params: bytes) -> str:
    return f"{method}|{thread_id}|{emitted_at_ms if emitted_at_ms is not None else ''}|{text_hash(raw_params)}"


class Forgotten(msgspec.Struct, frozen=True):
    """What a trim forgot: threads with lifecycle/content/other keys gone, and items with delta keys gone.

    A delta's key names its item, so only the deltas of these items need a lookup in the store;
    a long stream's new items (whose keys are all still held) need none.
    """

    threads: set[str]
    items: set[tuple[str, str]]


class Outcome(msgspec.Struct, frozen=True):
    decision: Decision
    chosen_source: str
    replaced_source: str | None


def decide(stored_source: str | None, incoming_source: str, preferred_source: str) -> Outcome:
    """The decision for one key, from the source already stored (if any)."""
    if stored_source is None:
        return Outcome("accepted", incoming_source, None)
    if stored_source == incoming_source:
        return Outcome("duplicate", stored_source, None)
    if incoming_source == preferred_source:
        return Outcome("replaced", incoming_source, stored_source)
    return Outcome("dropped", stored_source, None)


class Ledger:
    """The memory of which source holds each key; decisions update it at once.

    It is a cache in front of the store's ledger table: the pipeline loads the
    keys of a batch it has not seen (``remember``) before deciding, so a
    restarted bridge decides exactly as the old one would have.
    """

    def __init__(self, preferred_source: str, capacity: int = CAPACITY) -> None:
        self.preferred_source = preferred_source
        self.capacity = capacity
        self._held: dict[str, str] = {}

    @property
    def held(self) -> dict[str, str]:
        """Key -> source, the dict itself: the capture's hot loop tests and records new deltas in it directly."""
        return self._held

    def __contains__(self, key: str) -> bool:
        return key in self._held

    def remember(self, key: str, source: str) -> None:
        self._held[key] = source

    def decide(self, key: str, incoming_source: str) -> Outcome:
        outcome = decide(self._held.get(key), incoming_source, self.preferred_source)
        if outcome.decision in ("accepted", "replaced"):
            self._held[key] = incoming_source
        return outcome

    def trim(self) -> Forgotten | None:
        """Forget the oldest half when over capacity (the store still knows them); None when under it."""
        if len(self._held) <= self.capacity:
            return None
        held = self._held
        old = list(islice(held, len(held) // 2))  # the oldest half, in place: no copy of the rest
        for key in old:
            del held[key]
        threads: set[str] = set()
        items: set[tuple[str, str]] = set()
        deltas = DELTA_METHODS
        run = "\0"  # the deltas of an item come in runs whose keys share ``METHOD|T|I|``: one split a run
        for key in old:
            if key.startswith(run):
                continue
            parts = key.split("|", 3)
            if parts[0] in deltas:
                items.add((parts[1], parts[2]))
                run = key[: len(key) - len(parts[3])]
            else:
                threads.add(parts[1])
        return Forgotten(threads, items)
