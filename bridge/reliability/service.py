"""The capture-reliability subsystem of a running bridge.

It re-evaluates the capture mode (:mod:`.mode`) the moment a fact may have
changed: it subscribes to the supervisor's typed state
(:meth:`ReliabilityService.on_sidecar_state`, a
:class:`bridge.sidecar.events.SidecarState`) and lifecycle events
(:meth:`ReliabilityService.on_sidecar_lifecycle`) and to the receiver's status
(:meth:`ReliabilityService.on_receiver_status`); config changes call
:meth:`ReliabilityService.reevaluate`. Nobody has to poll, and nothing is read
back from the host's notifications.
When the mode changes it keeps the transition in memory, pushes
``capture-reliability-transition`` at once and hands the row to a writer task
(so the event loop never waits on the database); :meth:`stop` flushes what is
still pending. The first evaluation after a start is recorded with
``fromMode: null`` (docs/protocol.md §3.6).

Reads (:meth:`status`) never change anything. The bridge's own stop is not a
mode change: :meth:`stop` runs before the other subsystems stop, records a
``bridge_stop`` event and ignores what happens afterwards.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import TaskGroup

from bridge.clock import iso_ms, now_ms
from bridge.config.store import ConfigSource
from bridge.reliability import history
from bridge.reliability.gate import GateInputs, ReleaseGate, evaluate_gate
from bridge.reliability.history import Event, Transition
from bridge.reliability.mode import Evaluation, ModeFacts, evaluate
from bridge.reliability.storage_metrics import storage_metrics
from bridge.reliability.view import (
    CaptureReliabilityStatus,
    capture_metrics,
    facts_dict,
    receiver_metrics,
    sidecar_facts,
)
from bridge.sidecar.events import Exited, LifecycleEvent, SidecarState

if TYPE_CHECKING:
    from bridge.capture.service import CaptureService
    from bridge.receiver.receiver import ReceiverService
    from bridge.receiver.status import ReceiverStatus
    from bridge.sidecar.supervisor import Supervisor
    from bridge.store.db import Database

log = logging.getLogger("bridge.reliability")

TRANSITION_METHOD = "capture-reliability-transition"
FLUSH_BUDGET_S = 1.0
PENDING_KEPT = 1000  # history writes kept while the store cannot take them

Emit = Callable[[str, Any], object]


class ReliabilityService:
    def __init__(
        self,
        *,
        config: ConfigSource,
        db: Database,
        emit: Emit,
        sidecar: Supervisor | None = None,
        receiver: ReceiverService | None = None,
        capture: CaptureService | None = None,
        extra_metrics: Callable[[], dict[str, Any]] = dict,
        migration_status: Callable[[], tuple[str | None, str | None]] | None = None,
    ) -> None:
        self._config = config
        self._db = db
        self._emit = emit
        self.sidecar = sidecar
        self.receiver = receiver
        self.capture = capture
        self._extra_metrics = extra_metrics
        self._migration_status = migration_status or _collector_status
        self._lock = threading.RLock()
        self._started = False
        self._deferred = 0  # config changes being applied
        self._closed = False
        self._loop_thread: int | None = None
        self._loop: Any = None
        self._token: Any = None
        self._evaluation: Evaluation | None = None
        self._facts: ModeFacts | None = None
        self._mode_since_ms: int | None = None
        self._sidecar_state = "inactive"
        self._transitions: deque[Transition] = deque(maxlen=history.TRANSITIONS_KEPT)
        self._pending: list[Callable[[sqlite3.Connection], None]] = []
        self._snapshot: dict[str, Any] | None = None
        self._wake = anyio.Event()
        self._flush_lock = anyio.Lock()

    # ------------------------------------------------------------------ lifecycle

    async def start(self, tg: TaskGroup) -> None:
        """Load the recorded transitions, record the start and the first mode (``fromMode: null``)."""
        import asyncio

        from anyio.lowlevel import current_token

        self._loop_thread = threading.get_ident()
        self._token = current_token()
        self._loop = asyncio.get_running_loop()
        self._db.health.add_listener(self._storage_changed)
        recorded = await anyio.to_thread.run_sync(self._db.read, history.recent_transitions)
        self._transitions.extend(recorded)  # newest first
        now = now_ms()
        self._queue(lambda c: history.insert_event(c, Event(now, history.BRIDGE_START, "the bridge started")))
        with self._lock:
            self._started = True
            if self.sidecar is not None:
                self._sidecar_state = self.sidecar.status().state
            self._evaluate(first=True)
        tg.start_soon(self._writer)

    async def stop(self) -> None:
        """Stop evaluating (the bridge's own shutdown is not a mode change) and flush; bounded."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            now = now_ms()
            self._queue(lambda c: history.insert_event(c, Event(now, history.BRIDGE_STOP, "the bridge stopped")))
        with anyio.move_on_after(FLUSH_BUDGET_S, shield=True):
            await self._flush()

    # ------------------------------------------------------------------ inputs

    def _on_loop(self, fn: Any, *args: Any) -> bool:
        """Whether the caller is on the event loop; if not, ``fn(*args)`` is run there (and False returned)."""
        if self._loop_thread is not None and threading.get_ident() != self._loop_thread:
            anyio.from_thread.run_sync(fn, *args, token=self._token)
            return False
        return True

    def on_sidecar_state(self, state: SidecarState) -> None:
        """Supervisor state listener: the sidecar's status changed, so a fact may have changed."""
        if not self._started or self._closed or not self._on_loop(self.on_sidecar_state, state):
            return
        with self._lock:
            now_state = state.status.state
            if now_state == "crash_loop" and self._sidecar_state != "crash_loop":
                detail = state.status.last_error or "codex app-server exited too often"
                at = now_ms()
                self._queue(lambda c: history.insert_event(c, Event(at, history.CRASH_LOOP, detail)))
            self._sidecar_state = now_state
            if not self._deferred:
                self._evaluate()

    def on_receiver_status(self, status: ReceiverStatus) -> None:
        """Receiver status listener: its state may have changed (the facts read it from the receiver)."""
        if not self._started or self._closed or not self._on_loop(self.on_receiver_status, status):
            return
        self.reevaluate()

    def on_sidecar_lifecycle(self, event: LifecycleEvent) -> None:
        """Supervisor lifecycle listener: unexpected exits are kept as history."""
        if not isinstance(event, Exited) or event.expected or not self._started or self._closed:
            return
        at = now_ms()
        detail = f"codex app-server (pid {event.pid}) exited unexpectedly with code {event.code}"
        with self._lock:
            self._queue(lambda c: history.insert_event(c, Event(at, history.SIDECAR_EXIT, detail)))

    def _storage_changed(self) -> None:
        """Storage health listener (any thread): the store became unwritable, writable, or was replaced."""
        loop = self._loop
        if loop is not None and self._loop_thread is not None and threading.get_ident() != self._loop_thread:
            with contextlib.suppress(RuntimeError):  # the loop has closed: the bridge is stopping
                loop.call_soon_threadsafe(self.reevaluate)
            return
        self.reevaluate()

    def reevaluate(self) -> None:
        """Evaluate now (unless a config change is being applied: then its end does)."""
        if not self._started or self._closed:
            return
        with self._lock:
            if not self._deferred:
                self._evaluate()

    def defer(self) -> None:
        """A config change starts applying: judge the mode once it has applied (see :meth:`resume`).

        Applying one change can pass through states the operator never chose
        (a receiver re-bind stops it for a moment); those are not mode changes.
        """
        with self._lock:
            self._deferred += 1

    def resume(self) -> None:
        """The config change applied (or failed): evaluate the facts as they now are."""
        with self._lock:
            self._deferred = max(0, self._deferred - 1)
        self.reevaluate()

    # ------------------------------------------------------------------ evaluation

    def current_facts(self) -> ModeFacts:
        cfg = self._config.current
        receiver = self.receiver
        receiver_state = receiver.state if receiver is not None else "stopped"
        receiver_message = receiver.status().message if receiver is not None and receiver_state == "error" else None
        sidecar = self.sidecar
        health = self._db.health
        fault = health.fault
        return ModeFacts(
            auto_ingest_enabled=cfg.auto_ingest_enabled,
            receiver_state=receiver_state,
            stream_enrichment_enabled=cfg.stream_enrichment_enabled,
            kill_switch=cfg.stream_kill_switch,
            required_auth_mode=cfg.app_server_auth_mode,
            receiver_message=receiver_message,
            store_writable=fault is None,
            store_problem=None if fault is None else fault.detail,
            data_dir=str(health.data_dir),
            store_note=health.moved_aside,
            **sidecar_facts(sidecar.state() if sidecar is not None else None),
        )

    def _evaluate(self, first: bool = False) -> None:
        """Record and push a transition when the mode changed (the caller holds the lock)."""
        facts = self.current_facts()
        if not first and facts == self._facts:
            return
        self._facts = facts
        ev = evaluate(facts)
        now = now_ms()
        previous = self._evaluation
        self._evaluation = ev
        self._snapshot = {
            "atIso": iso_ms(now),
            "mode": ev.mode,
            "otelBaselineHealthy": ev.otel_baseline_healthy,
            "streamExpected": ev.stream_expected,
            "streamHealthy": ev.stream_healthy,
            "reasons": list(ev.reasons),
            "facts": facts_dict(facts),
        }
        self._queue(None)
        if not first and previous is not None and previous.mode == ev.mode:
            return
        from_mode = None if first else (previous.mode if previous else None)
        reason = ev.reason if not first else f"The bridge started; {ev.reason[0].lower()}{ev.reason[1:]}"
        transition = Transition(now, from_mode, ev.mode, reason)
        self._transitions.appendleft(transition)
        self._mode_since_ms = now
        self._queue(lambda c: history.insert_transition(c, transition))
        log.info("capture mode %s -> %s: %s", from_mode, ev.mode, reason)
        try:
            self._emit(TRANSITION_METHOD, transition.wire())
        except Exception:
            log.exception("pushing %s failed", TRANSITION_METHOD)

    # ------------------------------------------------------------------ persistence

    def _queue(self, op: Callable[[sqlite3.Connection], None] | None) -> None:
        """Hand a write to the writer task (``None``: only the snapshot changed)."""
        if op is not None:
            self._pending.append(op)
        self._wake.set()

    async def _writer(self) -> None:
        while True:
            await self._wake.wait()
            self._wake = anyio.Event()
            await self._flush()

    async def _flush(self) -> None:
        async with self._flush_lock:
            with self._lock:
                ops, self._pending = self._pending, []
                snapshot, self._snapshot = self._snapshot, None
            if not ops and snapshot is None:
                return

            def write(conn: sqlite3.Connection) -> None:
                for op in ops:
                    op(conn)
                if snapshot is not None:
                    history.save_snapshot(conn, snapshot, now_ms())

            try:
                await anyio.to_thread.run_sync(self._db.write, write)
            except Exception as exc:
                # Kept for the next flush (a full disk must not erase the record of the FAILURE it caused).
                with self._lock:
                    self._pending = (ops + self._pending)[-PENDING_KEPT:]
                    if self._snapshot is None:
                        self._snapshot = snapshot
                log.warning("recording capture reliability history failed (kept for later): %s", exc)

    # ------------------------------------------------------------------ reads

    def status(self) -> CaptureReliabilityStatus:
        """A pure read: the mode for the facts as they are now, with metrics and the recorded transitions."""
        facts = self.current_facts()
        ev = evaluate(facts)
        sidecar = self.sidecar
        with self._lock:
            transitions = [t.wire() for t in self._transitions]
        return CaptureReliabilityStatus(
            mode=ev.mode,
            otel_baseline_healthy=ev.otel_baseline_healthy,
            stream_expected=ev.stream_expected,
            stream_healthy=ev.stream_healthy,
            reasons=list(ev.reasons),
            metrics=self.metrics(),
            transitions=transitions,
            app_server=sidecar.status() if sidecar is not None else None,
            facts=facts_dict(facts),
        )

    def metrics(self) -> dict[str, Any]:
        """The metrics of docs/protocol.md §4.3, read from the subsystems as they are now."""
        m = capture_metrics(self.capture)
        m.update(storage_metrics(self._db, self.capture))
        if self.sidecar is not None:
            m.update(self.sidecar.metrics())
        if self.receiver is not None:
            m.update(receiver_metrics(self.receiver))
        try:
            m.update(self._extra_metrics())
        except Exception:
            log.exception("collecting extra reliability metrics failed")
        return m

    @property
    def mode(self) -> str | None:
        return self._evaluation.mode if self._evaluation is not None else None

    async def release_gate(self, window_hours: float, stable_seconds: float) -> ReleaseGate:
        """The Go / No-Go over the recorded window, with this bridge's current mode."""
        await self._flush()  # what was recorded so far is in the store
        now = now_ms()
        start = now - int(window_hours * 3_600_000)
        window = await anyio.to_thread.run_sync(self._db.read, lambda c: history.window_history(c, start))
        status, error = await anyio.to_thread.run_sync(self._migration_status)
        with self._lock:
            mode = self.mode
            since = self._mode_since_ms
        return evaluate_gate(
            GateInputs(
                now_ms=now,
                window_hours=window_hours,
                stable_seconds=stable_seconds,
                mode_at_window_start=window.mode_at_start,
                transitions=window.transitions,
                crash_loops=window.crash_loops,
                current_mode=mode,
                current_since_ms=since,
                live=True,
                stopped_at_ms=None,
                migration_status=status,
                migration_error=error,
                dedup=window.dedup,
            )
        )


def _collector_status() -> tuple[str | None, str | None]:
    """(status, lastError) of the collector migration on ``$HOME``; reading writes nothing."""
    try:
        from bridge.collector.service import CollectorMigrationService

        st = CollectorMigrationService().status()
    except Exception as exc:
        return None, f"{type(exc).__name__}: {exc}"
    return st.status, st.last_error
