"""The stream's hot path: frames → capture events → ledger → store → host.

The sidecar client hands notifications over a batch at a time
(:meth:`CapturePipeline.feed`, which never blocks) to the capture thread
(:class:`~bridge.capture.worker.IntakeThread`), which takes whatever is
waiting, normalises, decides and commits it in a single transaction, and only
then pushes ``session:live:event`` for what was accepted. So the event loop
never awaits per frame, a slow stream's frame wakes the loop only for its read,
and nothing counts as captured before it is durable.

When the store cannot be written (:class:`~bridge.store.db.StorageUnavailable`:
disk full, I/O error…) a batch is not dropped: it is held in memory
(:class:`~bridge.capture.hold.HoldQueue`, bounded by ``hold_limit_bytes``), and
every later batch joins it in order, until the storage probe proves writes
work again and calls :meth:`CapturePipeline.flush_held`. Past the bound the
oldest held batches are dropped as a counted gap, and their threads are handed
to ``on_gap`` (reconciled from a codex snapshot) once the rest is committed.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import msgspec

from bridge.capture.delta_group import AppliedDeltas, DeltaGroup
from bridge.capture.events import STREAM, CaptureEvent
from bridge.capture.hold import DEFAULT_LIMIT_BYTES, Gap, HoldQueue
from bridge.capture.live import METHOD, live_messages
from bridge.capture.normalize import DELTA_DECODERS, NormalizeError, normalize
from bridge.capture.rows import Applied
from bridge.capture.store import CaptureStore
from bridge.capture.worker import IntakeStopped, IntakeThread
from bridge.clock import iso_ms, now_iso
from bridge.redact import redact_text
from bridge.store.db import StorageUnavailable

log = logging.getLogger("bridge.capture")

_decode = msgspec.json.decode
_crc32 = zlib.crc32
LAG_WINDOW = 2048
MAX_QUEUED_FRAMES = 1_000  # beyond this the sidecar reader waits (bounded memory; a larger queue only adds RSS)
# Queued entries (a read's frames, a request's baseline events) decided and committed in one transaction:
# however far the capture falls behind, one transaction stays short, so a stop never waits on a long one.
MAX_WORK_PER_COMMIT = 256
MAX_RETRIES = 5  # a batch whose transaction fails is retried with backoff this often


def retry_delay(failures: int) -> float:
    """Seconds before the retry after ``failures`` failed transactions of a batch."""
    return min(5.0, 0.25 * 2.0**failures)


class StreamFrame(Protocol):
    """What the sidecar client hands over (its Envelope)."""

    method: str | None
    params: msgspec.Raw
    emittedAtMs: int | None
    line: bytes


Emit = Callable[[str, Any], int]
Work = list[tuple[str, Any]]


class _ThreadOnly(msgspec.Struct):
    threadId: str | None = None


_thread_of = msgspec.json.Decoder(_ThreadOnly)
_EVENT_OVERHEAD = 256  # bytes a held event costs beyond its texts (a rough, conservative figure)


def work_size(work: Work) -> tuple[int, int]:
    """(bytes, units) a batch holds in memory: frame lines, or events' raw params and texts."""
    size = units = 0
    for kind, batch in work:
        units += len(batch)
        if kind == "stream":
            size += sum(len(frame.line) + _EVENT_OVERHEAD for frame in batch)
        else:
            size += sum(len(ev.raw_params or b"") + len(ev.delta or "") + _EVENT_OVERHEAD for ev in batch)
    return size, units


def work_threads(work: Work) -> set[str]:
    """The threads a batch touched (for reconciling after it was dropped)."""
    out: set[str] = set()
    for kind, batch in work:
        for entry in batch:
            if kind == "events":
                out.add(entry.thread_id)
                continue
            try:
                thread = _thread_of.decode(bytes(entry.params)).threadId
            except (msgspec.DecodeError, TypeError):
                continue
            if thread:
                out.add(thread)
    return out


class CapturePipeline:
    def __init__(
        self,
        store: CaptureStore,
        emit: Emit,
        stream_enabled: Callable[[], bool],
        emit_built: Callable[[Callable[[int], list[bytes]]], None] | None = None,
        hold_limit_bytes: int = DEFAULT_LIMIT_BYTES,
    ) -> None:
        self.store = store
        self._emit = emit
        # the notifier's emit_built numbers live events built as bytes; without it each goes through emit
        self._emit_built = emit_built or (
            lambda build: [emit(METHOD, _decode(message)["params"]) for message in build(1)] and None
        )
        self._stream_enabled = stream_enabled
        # every capture transaction runs on this one thread, which takes the queued work itself
        self._thread: IntakeThread[tuple[str, Any]] = IntakeThread(self._take, MAX_WORK_PER_COMMIT)
        self.parser_errors = 0
        self.ignored_while_killed = 0
        self.last_stream_event_at: float | None = None  # monotonic
        self.lags_ms: deque[int] = deque(maxlen=LAG_WINDOW)
        self.batches = 0
        self.batches_dropped = 0
        # The sidecar reader's room: frames fed (the loop counts) against frames taken (the thread counts).
        self._frames_lock = threading.Lock()
        self._frames_fed = 0
        self._frames_taken = 0
        self._room = asyncio.Event()
        self._room.set()
        self._room_wanted = False  # the reader waits: the thread sets the room once it took enough
        self._observers: list[tuple[Callable[[list[Applied]], None], Callable[[], bool]]] = []
        self.held: HoldQueue[Work] = HoldQueue(hold_limit_bytes)
        self.held_batches_committed = 0
        self.on_gap: Callable[[Gap], None] | None = None  # threads to reconcile after a drop

    def add_observer(
        self, observer: Callable[[list[Applied]], None], wanted: Callable[[], bool] = lambda: True
    ) -> None:
        """``observer(applied)`` sees the events of every committed batch (e.g. OTEL enrichment), on the loop.

        Only while ``wanted()`` (asked on the capture thread after each commit): an observer that is
        off costs the loop no wake-up. The stream's deltas (committed as :class:`AppliedDeltas`
        groups) are not shown: a delta is content, and no observer exports it.
        """
        self._observers.append((observer, wanted))

    @property
    def queued_frames(self) -> int:
        """Stream frames fed and not yet taken by the capture thread."""
        return self._frames_fed - self._frames_taken

    # -------------------------------------------------------------- input
    def feed(self, frames: Sequence[StreamFrame]) -> None:
        """Listener for the sidecar client: queue a batch of notifications (never blocks)."""
        if not self._stream_enabled():
            self.ignored_while_killed += len(frames)
            return
        with self._frames_lock:
            self._frames_fed += len(frames)
            if self._frames_fed - self._frames_taken > MAX_QUEUED_FRAMES and not self._room_wanted:
                self._room_wanted = True
                self._room.clear()
        self._thread.put(("stream", frames))

    def feed_events(self, events: Sequence[CaptureEvent]) -> None:
        """Queue already-normalised events (the OTEL baseline, reconciliation)."""
        self._thread.put(("events", events))

    async def wait_for_room(self) -> None:
        """Backpressure for the sidecar reader: wait while too many frames are queued.

        With room (the usual case) it returns without a checkpoint: the reader yields anyway
        when it waits for codex's next bytes, and an extra turn of the loop per read is what a
        slow stream pays most for.
        """
        if not self._room.is_set():
            await self._room.wait()

    async def drain(self, strict: bool = True) -> None:
        """Wait until everything fed so far is committed and emitted, or held for the store.

        ``strict``: held batches (the store cannot be written) raise
        :class:`StorageUnavailable`, so a command that needs its events stored
        answers -32040 instead of waiting for space. :class:`IntakeStopped` (-32002) when the
        capture thread stopped (the bridge is shutting down) before it got to them.
        """
        await self._thread.settled()
        if strict and self.held:
            db = self.store.db
            fault = db.health.fault
            raise StorageUnavailable(
                db.path.parent,
                fault.kind if fault else "io_error",
                (fault.detail if fault else "writes fail") + f"; {len(self.held)} captured batches are held in memory",
            )

    # -------------------------------------------------------------- processing
    async def run(self) -> None:
        """Keep the capture thread running until cancelled (then it stops after its current transaction)."""
        await self._thread.run()

    def _take(self, work: Work) -> None:
        """On the capture thread: a bounded batch of queued entries, committed, held for the store, or retried."""
        frames = sum(len(batch) for kind, batch in work if kind == "stream")
        if frames:
            with self._frames_lock:
                self._frames_taken += frames
                wake = self._room_wanted and self._frames_fed - self._frames_taken <= MAX_QUEUED_FRAMES
                if wake:
                    self._room_wanted = False
            if wake:
                self._thread.to_loop(self._open_room)
        failures = 0
        while True:
            if self.held:  # older batches wait for the store: keep the order
                self._hold(work)
                return
            try:
                applied = self._capture(work)
            except StorageUnavailable as exc:
                log.error("capturing a batch failed on the storage (%s); it is held in memory", exc.kind)
                self._hold(work)
                return
            except Exception:
                if failures >= MAX_RETRIES:
                    self.batches_dropped += 1
                    log.error("capturing a batch failed %d times; it is dropped (batches_dropped)", MAX_RETRIES + 1)
                    return
                failures += 1
                delay = retry_delay(failures)
                log.exception("capturing a batch failed; retrying in %.2f s", delay)
                if self._thread.wait_stopping(delay):
                    return  # the bridge stops: nothing of the batch was kept
                continue
            self._committed(applied)
            return

    def _open_room(self) -> None:
        """On the loop: the reader may read again, unless a feed since the wake-up filled the queue anew."""
        with self._frames_lock:
            if not self._room_wanted:
                self._room.set()

    def _hold(self, work: Work) -> None:
        size, units = work_size(work)
        dropped = self.held.push(work, size, units, work_threads)
        if dropped:
            log.error(
                "%d held batches dropped to stay within %d bytes (a counted gap; their threads are reconciled later)",
                len(dropped), self.held.limit_bytes,
            )  # fmt: skip

    def _committed(self, applied: list[Applied | AppliedDeltas]) -> None:
        self.batches += 1
        observers = [observer for observer, wanted in self._observers if wanted()]
        if not observers:
            return
        events = [entry for entry in applied if isinstance(entry, Applied)]  # groups of deltas: no observer uses them
        if events:
            self._thread.to_loop(_observe, observers, events)

    async def flush_held(self) -> bool:
        """Commit the held batches, oldest first (the storage works again). True when none is left.

        Then the threads of a gap (batches dropped past the bound) go to
        ``on_gap``, to be reconciled from a snapshot.
        """
        try:
            flushed, gap = await self._thread.call(self._flush_held)
        except IntakeStopped:  # the bridge is stopping: what is held stays held (and is logged at stop)
            return False
        if gap is not None and gap.batches and self.on_gap is not None:
            try:
                self.on_gap(gap)
            except Exception:
                log.exception("handing the gap on for reconciliation failed")
        return flushed

    def _flush_held(self) -> tuple[bool, Gap | None]:
        """On the capture thread, between two batches: the held batches committed in order."""
        while self.held:
            work = self.held.peek()
            try:
                applied = self._capture(work)
            except StorageUnavailable:
                return False, None
            except Exception:
                log.exception("committing a held batch failed (not on the storage); it is dropped")
                self.held.pop()
                self.batches_dropped += 1
                continue
            self.held.pop()
            self.held_batches_committed += 1
            self._committed(applied)
        return True, self.held.take_gap()

    def _capture(self, work: list[tuple[str, Any]]) -> list[Applied | AppliedDeltas]:
        """On the capture thread: decide and commit a batch, then tell the host (after the commit).

        Encoding the notifications here too keeps the event loop free for the
        sidecar's pipe; the notifier is thread-safe and keeps seq order.
        """
        applied, problems = self._process(work)
        for problem in problems:
            self._emit("session:live:event", problem)
        self._publish(applied)
        return applied

    def _process(self, work: list[tuple[str, Any]]) -> tuple[list[Applied | AppliedDeltas], list[dict[str, Any]]]:
        """Decide and commit a batch: its events in order, consecutive deltas of an item as one group."""
        events: list[CaptureEvent | DeltaGroup] = []
        problems: list[dict[str, Any]] = []
        now = int(time.time() * 1000)
        append, lag = events.append, self.lags_ms.append
        delta_decoders = DELTA_DECODERS
        group: DeltaGroup | None = None
        # the current group's ids and list appends, as locals: the loop below runs once per delta
        g_method = g_thread = g_turn = g_item = prefix = ""
        add_key: Callable[[str], None]  # bound when the first group is made
        add_emitted: Callable[[int | None], None]
        add_digest: Callable[[str], None]
        add_text: Callable[[str], None]
        for kind, batch in work:
            if kind == "events":
                events.extend(batch)
                group = None
                continue
            for frame in batch:
                method = frame.method
                if method is None:
                    continue
                emitted = frame.emittedAtMs
                decoder = delta_decoders.get(method)
                if decoder is not None:  # nine frames in ten: into the current run of deltas, inline
                    try:
                        d = decoder.decode(frame.params)
                    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError):
                        d = None  # normalize, below, reports it as a parser error
                    if d is not None:
                        thread_id, turn_id, item_id, text = d.thread_id, d.turn_id, d.item_id, d.delta
                        if (
                            group is None or item_id != g_item or thread_id != g_thread or method != g_method
                            or turn_id != g_turn
                        ):  # fmt: skip
                            group = DeltaGroup(method, thread_id, turn_id, item_id)
                            append(group)
                            g_method, g_thread, g_turn, g_item, prefix = method, thread_id, turn_id, item_id, (
                                group.key_prefix
                            )
                            add_key, add_emitted = group.keys.append, group.emitted.append
                            add_digest, add_text = group.digests.append, group.texts.append
                        data = text.encode()
                        digest = "%08x%x" % (_crc32(data), len(data))  # noqa: UP031 (ledger.text_hash, inlined)
                        if emitted is None:
                            add_key(prefix + "|" + digest)
                        else:
                            add_key("%s%d|%s" % (prefix, emitted, digest))  # noqa: UP031 (ledger.delta_key)
                            lag(now - emitted if now > emitted else 0)
                        add_emitted(emitted)
                        add_digest(digest)
                        add_text(text)  # redacted with the rest of its run, below
                        continue
                try:
                    event = normalize(method, frame.params, emitted)
                except NormalizeError as exc:
                    self.parser_errors += 1
                    problems.append(
                        {"type": "ParserValidationError", "kind": exc.kind,
                         "rawPreview": redact_text(frame.line[:256].decode(errors="replace"))[:256],
                         "reason": redact_text(f"{method}: {exc.reason}"), "occurredAtIso": iso_ms(now)}
                    )  # fmt: skip
                    continue
                if event is not None:
                    append(event)
                    group = None  # the run is over: what follows is decided after this event
                    if emitted is not None:
                        lag(now - emitted if now > emitted else 0)
        if not events:
            return [], problems
        for entry in events:
            if isinstance(entry, DeltaGroup):
                entry.mask()
        return self.store.apply(events), problems

    def _publish(self, applied: list[Applied | AppliedDeltas]) -> None:
        if not applied:
            return
        if any(isinstance(entry, AppliedDeltas) or entry.event.source == STREAM for entry in applied):
            self.last_stream_event_at = time.monotonic()
        received = now_iso()
        self._emit_built(lambda first: live_messages(applied, received, first))

    # -------------------------------------------------------------- metrics
    def lag_percentiles(self) -> tuple[int | None, int | None]:
        if not self.lags_ms:
            return None, None
        ordered = sorted(self.lags_ms)
        p50 = ordered[len(ordered) // 2]
        p99 = ordered[min(len(ordered) - 1, (len(ordered) * 99) // 100)]
        return p50, p99


def _observe(observers: list[Callable[[list[Applied]], None]], events: list[Applied]) -> None:
    """On the loop: a committed batch's events to the observers that wanted them."""
    for observer in observers:
        try:
            observer(events)
        except Exception:
            log.exception("a capture observer failed")
