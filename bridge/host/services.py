"""Bringing the subsystems of a running bridge up and down, in order.

``start`` builds each subsystem, attaches it to the :class:`App` and starts
its background tasks in ``tg``; ``stop`` winds them down in reverse order
within the shutdown budget (docs/protocol.md §1: exit within 3 s).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from anyio.abc import TaskGroup

from bridge.config.model import IngestConfig
from bridge.host.app import App

if TYPE_CHECKING:
    from bridge.capture.events import CaptureEvent

log = logging.getLogger("bridge.services")

SIDECAR_STATUS = "codex-app-server-status"


async def start(app: App, tg: TaskGroup) -> None:
    """Bring every subsystem up, in dependency order."""
    await _start_capture(app, tg)
    _start_storage(app, tg)
    await _start_receiver(app, tg)
    await _start_enrichment(app, tg)
    await _start_sidecar(app, tg)
    connect_stream(app, tg)
    await _start_reliability(app, tg)  # last: its first mode needs the receiver bound (or failed)


# Imported after ready, on a worker thread, so that the first OTLP request does not import them on the loop.
_AFTER_READY_IMPORTS = (
    "bridge.receiver.baseline_window",
    "bridge.receiver.decoder",
    "bridge.receiver.sink",
    "bridge.receiver.http_connection",
)


def after_ready(app: App, tg: TaskGroup) -> None:
    """Start-up work no status depends on, started once the bridge answers commands (``dispatcher.ready``)."""
    if app.receiver is not None:
        tg.start_soon(app.receiver.warm_up)
        tg.start_soon(_import_ahead)


async def _import_ahead() -> None:
    import importlib

    import anyio

    await anyio.to_thread.run_sync(lambda: [importlib.import_module(name) for name in _AFTER_READY_IMPORTS])


async def _start_capture(app: App, tg: TaskGroup) -> None:
    """The capture store and the stream's pipeline."""
    from bridge.capture.service import CaptureService

    config = app.config
    app.capture = CaptureService(
        app.db,
        app.notifier.emit,
        emit_built=app.notifier.emit_built,
        preferred_source=config.current.dedup.completed_content_source,
        stream_enabled=lambda: config.current.stream_enrichment_enabled and not config.current.stream_kill_switch,
        retention_days=lambda: config.current.retention_days,
    )
    await app.capture.start(tg)


def _start_storage(app: App, tg: TaskGroup) -> None:
    """The storage probe (back out of a storage fault by itself) and the quick check, off the first answer."""
    import os

    from bridge.store.probe import StorageProbe

    app.db.start_checkpoints()  # the WAL is checkpointed on a thread of its own, never on a capture commit
    probe = StorageProbe(app.db)
    capture = app.capture
    if capture is not None:
        pipeline = capture.pipeline
        hold = os.environ.get("CAPTURE_BRIDGE_HOLD_BYTES")  # tests shrink the 64 MiB hold with it
        if hold and hold.isdigit():
            pipeline.held.limit_bytes = int(hold)
        probe.add_backlog(pipeline.flush_held)

        def on_gap(gap: Any) -> None:
            log.warning(
                "%d held batches were dropped; reconciling %d threads from codex", gap.batches, len(gap.threads)
            )
            tg.start_soon(_reconcile_threads, app, sorted(gap.threads))

        pipeline.on_gap = on_gap
    tg.start_soon(probe.check_at_start)
    tg.start_soon(probe.run)


async def _reconcile_threads(app: App, thread_ids: list[str]) -> None:
    """Threads whose held batches were dropped: read them back from codex (a snapshot) into the store."""
    from bridge.errors import BridgeError
    from bridge.host.commands.threads import take_snapshot

    for thread_id in thread_ids:
        try:
            await take_snapshot(app, thread_id)
            log.info("thread %s reconciled from a snapshot after a storage gap", thread_id)
        except BridgeError as exc:
            log.warning("reconciling thread %s after a storage gap failed: %s", thread_id, exc.message)


async def _start_receiver(app: App, tg: TaskGroup) -> None:
    """The OTLP receiver, whose newly stored records feed the capture pipeline (the baseline)."""
    from bridge.receiver.receiver import ReceiverService

    app.receiver = ReceiverService(
        config=app.config.current.otlp_receiver,
        db=app.db,
        telemetry_path=app.data_dir.telemetry,
        key_path=app.data_dir.otlp_key,
        runtime_path=app.data_dir.runtime,
        emit=app.notifier.emit,
        ingest_enabled=lambda: app.config.current.auto_ingest_enabled,
    )
    capture = app.capture
    assert capture is not None

    def on_events(events: list[CaptureEvent]) -> None:
        """The baseline's events (the decoder process mapped them) → captured content, a window at a time."""
        if app.baseline is None:
            from bridge.receiver.baseline_window import BaselineWindow  # imported ahead by after_ready, off the loop

            app.baseline = BaselineWindow(capture.pipeline.feed_events)
            tg.start_soon(app.baseline.run)
        app.baseline.offer(events)

    app.receiver.on_events = on_events
    await app.receiver.start(tg)  # a bind failure is state "error", never an exception


async def _start_sidecar(app: App, tg: TaskGroup) -> None:
    """The codex supervisor (codex itself starts on start_codex_app_server)."""
    from bridge.sidecar.events import SidecarState
    from bridge.sidecar.generation import SupervisorOptions
    from bridge.sidecar.supervisor import Supervisor

    receiver = app.receiver
    options = SupervisorOptions(extra_args=lambda: receiver.codex_overrides("binary") if receiver is not None else [])
    app.sidecar = Supervisor(app.config, options)
    notifier = app.notifier

    def push_status(state: SidecarState) -> None:  # codex-app-server-status (docs/protocol.md §4.1)
        notifier.emit(SIDECAR_STATUS, state.status)

    app.sidecar.hub.add_state_listener(push_status)
    if app.transcript is not None:  # every codex connection is recorded, restarts and attach included
        app.sidecar.hub.add_client_listener(app.transcript.client_created)
        app.sidecar.hub.add_lifecycle_listener(app.transcript.sidecar_lifecycle)
    await tg.start(app.sidecar.run)


async def stop(app: App) -> None:
    """Stop every subsystem, newest first, flushing what is durable."""
    if app.reliability is not None:
        await app.reliability.stop()  # first: the bridge's own stop is not a mode change
    if app.sidecar is not None:
        await app.sidecar.aclose(fast=True)  # close stdin, 0.6 s, SIGTERM, 0.3 s, SIGKILL
    if app.receiver is not None:
        await app.receiver.place_held()  # records the decoder held back for their turn: placed as their time ran out
    if app.baseline is not None:
        app.baseline.flush()  # what the receiver stored in the last few ms: the capture commits it below
    if app.capture is not None:
        import anyio

        with anyio.move_on_after(0.5):
            await app.capture.pipeline.drain(strict=False)  # commit what the sidecar said last
        if app.capture.pipeline.held:
            log.error("stopping with %d captured batches held for an unwritable store", len(app.capture.pipeline.held))
    if app.enrichment is not None:
        await app.enrichment.close()  # what is still in memory goes to the on-disk queue (bounded)
    if app.receiver is not None:
        await app.receiver.close()


async def config_changed(app: App, old: IngestConfig, new: IngestConfig) -> None:
    """Apply a config change to the running subsystems before set_ingest_config answers."""
    reliability = app.reliability
    if reliability is not None:
        reliability.defer()  # the capture mode is judged once the whole change has applied
    try:
        await _apply_config_change(app, old, new)
    finally:
        if reliability is not None:
            reliability.resume()  # kill switch, autoIngestEnabled, streamEnrichmentEnabled, receiver, auth mode


async def _apply_config_change(app: App, old: IngestConfig, new: IngestConfig) -> None:
    if app.capture is not None and new.dedup != old.dedup:  # precedence applies from the next decision
        app.capture.set_preferred_source(new.dedup.completed_content_source)
    if app.sidecar is not None:
        app.sidecar.config_changed(old, new)
    if app.receiver is not None:
        if new.otlp_receiver != old.otlp_receiver:
            await app.receiver.apply_config(new.otlp_receiver)
        if new.auto_ingest_enabled != old.auto_ingest_enabled:
            await app.receiver.refresh()
    if app.enrichment is not None and (new.export != old.export or new.otlp_receiver != old.otlp_receiver):
        await app.enrichment.apply_config(new)


async def _start_enrichment(app: App, tg: TaskGroup) -> None:
    """OTLP enrichment export: an observer of committed capture batches (off without an endpoint)."""
    from bridge.enrichment.enrichment_service import EnrichmentService

    receiver = app.receiver
    app.enrichment = EnrichmentService(
        app.config.current,
        app.data_dir.export_queue,
        receiver_endpoint=lambda: receiver.endpoint if receiver is not None else None,
    )
    if app.capture is not None:
        app.capture.pipeline.add_observer(app.enrichment.observe, app.enrichment.observing)
    await app.enrichment.start(tg)


async def _start_reliability(app: App, tg: TaskGroup) -> None:
    """Capture mode: re-evaluated on every sidecar state, receiver status and config change, never polled."""
    from bridge.reliability.service import ReliabilityService

    def extra_metrics() -> dict[str, Any]:
        out: dict[str, Any] = {}
        if app.approvals is not None:
            out["pendingApprovals"] = len(app.approvals.pending)
            out["approvalTimeoutsTotal"] = app.approvals.timeouts_total
        if app.enrichment is not None:
            export = app.enrichment.status()
            out["exportQueueDepth"] = export.get("queueBatches", 0)
            out["exportDropped"] = export.get("droppedBatches", 0)
            out["export"] = export
        return out

    app.reliability = ReliabilityService(
        config=app.config,
        db=app.db,
        emit=app.notifier.emit,
        sidecar=app.sidecar,
        receiver=app.receiver,
        capture=app.capture,
        extra_metrics=extra_metrics,
    )
    if app.receiver is not None:
        app.receiver.status_listeners.append(app.reliability.on_receiver_status)
    if app.sidecar is not None:
        app.sidecar.hub.add_state_listener(app.reliability.on_sidecar_state)
        app.sidecar.hub.add_lifecycle_listener(app.reliability.on_sidecar_lifecycle)
    await app.reliability.start(tg)
    if app.capture is not None:
        from bridge.reliability import history

        db = app.db
        app.capture.retention_hooks.append(lambda cutoff: db.write(lambda conn: history.prune(conn, cutoff)))


def connect_stream(app: App, tg: TaskGroup) -> None:
    """Wire the sidecar's stream into capture and approvals."""
    import anyio
    import msgspec

    from bridge.capture.approvals import KINDS, ApprovalBroker
    from bridge.sidecar.events import Exited, LifecycleEvent, Rehandshaken

    sidecar, capture = app.sidecar, app.capture
    assert sidecar is not None and capture is not None
    config = app.config
    broker = ApprovalBroker(app.notifier.emit, lambda: config.current.approvals.timeout_ms)
    broker.tg = tg
    app.approvals = broker
    sidecar.hub.add_stream_listener(capture.pipeline.feed)
    sidecar.hub.add_client_listener(lambda client: client.add_backpressure(capture.pipeline.wait_for_room))

    class Resolved(msgspec.Struct, rename="camel"):
        thread_id: str
        request_id: int | str

    resolved = msgspec.json.Decoder(Resolved)

    def on_notes(batch: list[Any]) -> None:
        for env in batch:
            if env.method == "serverRequest/resolved":
                try:
                    note = resolved.decode(env.params)
                except msgspec.ValidationError:
                    continue
                broker.on_resolved(note.thread_id, note.request_id)

    sidecar.hub.add_stream_listener(on_notes)

    def on_request(env: Any) -> None:
        client = sidecar.client
        if client is None:
            return
        request_id = env.id
        if client.observer:  # attach mode: the user's own client answers; the bridge only records
            broker.on_observed(env.method, request_id, bytes(env.params))
            return

        async def respond(result: Any) -> None:
            await client.respond(request_id, result)

        broker.on_request(env.method, request_id, bytes(env.params), respond)

    for method in KINDS:
        sidecar.hub.set_request_handler(method, on_request)

    async def reconcile_open_threads() -> None:
        """After an automatic restart: fill what the dead sidecar never sent (thread/read + turns/list)."""
        from bridge.errors import BridgeError
        from bridge.host.commands.threads import take_snapshot

        for thread_id in await anyio.to_thread.run_sync(capture.store.threads_with_open_turns):
            try:
                await take_snapshot(app, thread_id)
            except BridgeError as exc:
                log.warning("reconciling thread %s after a restart failed: %s", thread_id, exc.message)

    def on_lifecycle(event: LifecycleEvent) -> None:
        if isinstance(event, Exited):
            broker.sidecar_restarted()
            tg.start_soon(anyio.to_thread.run_sync, capture.sidecar_gone)
        elif isinstance(event, Rehandshaken):
            tg.start_soon(reconcile_open_threads)

    sidecar.hub.add_lifecycle_listener(on_lifecycle)

    async def backfill(thread_id: str) -> None:  # attach mode: what happened before the bridge followed
        # imported here, not at start-up: the command modules are imported on a worker thread then
        from bridge.host.commands.threads import take_snapshot

        await take_snapshot(app, thread_id)

    sidecar.attach_mode.set_backfill(backfill)
