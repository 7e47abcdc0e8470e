"""The OTLP/HTTP receiver service: the OTEL baseline's front door.

It binds ``otlpReceiver.host:port`` and accepts connections. Each one goes to its
decoder process (:mod:`bridge.receiver.decoder`), which serves it: checks the key,
rate-limits, reads bounded bodies, decodes and stores them in the telemetry store and
answers as OTLP/HTTP prescribes (:mod:`bridge.receiver.intake` has the steps and the
refusals), then tells the bridge each request's outcome. Where the decoder cannot take
a connection (a system that cannot pass descriptors, a decoder restarting after a
failure) the bridge serves it itself with the same steps. Either way the bridge keeps
the counters, hands what was newly stored to the OTEL baseline and turns a storage
fault into a fact of the mode. It reports its state (``listening`` / ``stopped`` /
``error``) through ``otel-receiver-status`` notifications and
``<dataDir>/runtime.json``. A failure to bind never takes the bridge down: it
becomes state ``error`` with a message saying what to do.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import anyio
from anyio.abc import TaskGroup
from msgspec.structs import astuple

from bridge.clock import now_iso
from bridge.config.model import OtlpReceiverConfig
from bridge.config.paths import TELEMETRY_FILE
from bridge.receiver import auth, decode, http
from bridge.receiver.status import NOTIFICATION, Counters, ReceiverStatus, State, client_host, write_runtime
from bridge.redact import register_secret, registered_secrets
from bridge.store.db import Database

if TYPE_CHECKING:  # each loaded with the first connection: a first status needs none of them
    from bridge.capture.events import CaptureEvent
    from bridge.receiver.decoder import DecoderProcess
    from bridge.receiver.decoder_wire import Ingested, Job, Outcome, Rules
    from bridge.receiver.intake import Intake

log = logging.getLogger(__name__)


STOP_TIMEOUT = 1.5
ACCEPT_RETRY_S = 0.1  # after the system refused an accept (out of descriptors)


class ReceiverService:
    """One bridge's receiver: start, re-bind on config changes, stop; counters and status."""

    def __init__(
        self,
        *,
        config: OtlpReceiverConfig,
        db: Database,
        key_path: Path,
        runtime_path: Path,
        emit: Callable[[str, Any], object],
        ingest_enabled: Callable[[], bool] = lambda: True,
        clock: Callable[[], float] | None = None,
        http_limits: http.Limits | None = None,
        decoder: DecoderProcess | None = None,
        telemetry_path: Path | None = None,
    ) -> None:
        self._config = config
        self._db = db  # its health takes the telemetry store's faults; the decoder process writes that store
        self._telemetry_path = telemetry_path or db.path.with_name(TELEMETRY_FILE)
        self._key_path = key_path
        self._runtime_path = runtime_path
        self._emit = emit
        self._ingest_enabled = ingest_enabled
        self._http_limits = http_limits or http.Limits()
        # Connections go to the decoder process to be served there, unless a clock or a decoder is given:
        # both exist only in this process (the rate limiter's clock, a stand-in decoder), so they are served here.
        self._hand_off = clock is None and decoder is None
        self._clock = clock or time.monotonic
        self._intake: Intake | None = None  # the steps of a connection this process serves itself
        self._key: str | None = None
        self._decoder = decoder  # made on the first connection (its module is not needed before)
        self._last_fault: str | None = None
        self._reaping = False
        self._lock = anyio.Lock()
        self._tg: TaskGroup | None = None
        self._scope: anyio.CancelScope | None = None
        self._done: anyio.Event | None = None
        self._state: State = "stopped"
        self._endpoint: str | None = None
        self._message: str | None = "The receiver has not started yet."
        self._bound: tuple[str, int] | None = None
        self._last_reported: tuple[Any, ...] | None = None
        self.counters = Counters()
        # Called on the event loop with the OTEL baseline's capture events: those of the records each request
        # newly stored (after their commit), and those of records the decoder held back and let go later.
        self.on_events: Callable[[list[CaptureEvent]], None] | None = None
        # Called on the event loop with each status the receiver reports (the typed path beside the notification).
        self.status_listeners: list[Callable[[ReceiverStatus], None]] = []

    # -- status ---------------------------------------------------------------

    @property
    def state(self) -> State:
        """``error`` also while the socket listens but the decoder process keeps failing."""
        if self._state == "listening" and self._decoder_fault() is not None:
            return "error"
        return self._state

    @property
    def listening(self) -> bool:
        return self._state == "listening"

    @property
    def endpoint(self) -> str | None:
        """``http://host:port`` while listening; signals live under ``/v1/…``."""
        return self._endpoint if self.listening else None

    def status(self) -> ReceiverStatus:
        c = self.counters
        message = self._message
        if self.listening and self._decoder_fault() is not None:
            message = self._decoder_fault()
        elif self.listening and not self._ingest_enabled():
            message = (
                "autoIngestEnabled is false: telemetry is answered but not stored. "
                "Turn it on with set_ingest_config to capture the baseline."
            )
        return ReceiverStatus(
            state=self.state,
            endpoint=self.endpoint,
            header_name=auth.HEADER_NAME,
            last_batch_at_iso=c.last_batch_at_iso,
            accepted=c.accepted,
            rejected=c.rejected,
            message=message,
            enabled=self._config.enabled,
            records_stored=c.records_stored,
            records_duplicate=c.records_duplicate,
            records_rejected=c.records_rejected,
            records_discarded=c.records_discarded,
        )

    @property
    def decoder(self) -> DecoderProcess | None:
        """The decoder process's handle, once a connection or a request needed it."""
        return self._decoder

    def _decoder_fault(self) -> str | None:
        return self._decoder.fault if self._decoder is not None else None

    def codex_overrides(self, protocol: Literal["json", "binary"] = "binary") -> list[str]:
        """``-c`` arguments pointing a codex this bridge spawns at the receiver ([] when not listening)."""
        if not self.listening or self._endpoint is None or self._key is None:
            return []
        from bridge.receiver.codex_overrides import codex_otel_overrides

        return codex_otel_overrides(self._endpoint, self._key, protocol=protocol)

    async def _set_state(self, state: State, message: str | None) -> None:
        self._state = state
        self._message = message
        await self.refresh()

    async def refresh(self) -> None:
        """Report the status (notification + runtime.json) when what it says has changed.

        Called on every state change, and by the bridge when ``autoIngestEnabled``
        changes, since that changes what the status says.
        """
        if self._decoder is not None:
            await self._decoder.push_rules()  # autoIngestEnabled or the limits may have changed
        self._last_fault = self._decoder_fault()
        status = self.status()
        snapshot = (status.state, status.endpoint, status.message, status.enabled)
        if snapshot == self._last_reported:
            return
        self._last_reported = snapshot
        try:
            await anyio.to_thread.run_sync(self._write_runtime)
        except OSError as exc:
            log.warning("could not write %s: %s", self._runtime_path, exc)
        self._emit(NOTIFICATION, status)
        for listener in self.status_listeners:
            listener(status)

    def _write_runtime(self) -> None:
        write_runtime(self._runtime_path, self._state, self.endpoint, now_iso())

    # -- lifecycle ------------------------------------------------------------

    async def start(self, tg: TaskGroup) -> None:
        """Load (or create) the key and start listening when ``otlpReceiver.enabled``."""
        self._tg = tg
        try:
            self._key = await anyio.to_thread.run_sync(auth.load_or_create_key, self._key_path)
            register_secret(self._key)
        except OSError as exc:
            await self._set_state(
                "error",
                f"Could not create the receiver key {self._key_path}: {exc.strerror or exc}. "
                "Check that the data dir is writable, then re-enable the receiver.",
            )
            return
        async with self._lock:
            await self._apply(self._config, force=True)

    async def warm_up(self) -> None:
        """Import the protobuf decoders ahead of the first request (off the event loop).

        ``services.after_ready`` starts it once the first status can be answered:
        it is CPU under the same GIL, so earlier it would only delay that answer.
        A request that comes first imports what it needs itself.
        """
        try:
            await anyio.to_thread.run_sync(decode.warm_up, abandon_on_cancel=True)
        except Exception:  # pragma: no cover - an import problem shows on the first request
            log.exception("warming up the OTLP decoders failed")

    async def apply_config(self, config: OtlpReceiverConfig) -> ReceiverStatus:
        """Adopt a new ``otlpReceiver`` section; returns once a re-bind or stop took effect."""
        async with self._lock:
            await self._apply(config, force=False)
        return self.status()

    async def _apply(self, config: OtlpReceiverConfig, *, force: bool) -> None:
        old = self._config
        self._config = config
        same_address = (config.host, config.port) == (old.host, old.port)
        if not force and config.enabled and self.listening and same_address:
            if self._decoder is not None:
                await self._decoder.push_rules()
            return  # only limits changed: they apply to the next request
        await self._stop_listening()
        if not config.enabled:
            await self._set_state("stopped", "The receiver is disabled (otlpReceiver.enabled is false).")
            return
        await self._listen(config)

    async def _listen(self, config: OtlpReceiverConfig) -> None:
        assert self._tg is not None, "start() first"
        if self._key is None:
            try:
                self._key = await anyio.to_thread.run_sync(auth.load_or_create_key, self._key_path)
                register_secret(self._key)
            except OSError as exc:
                await self._set_state("error", f"Could not create the receiver key {self._key_path}: {exc}.")
                return
        try:
            listener = await anyio.create_tcp_listener(local_host=config.host, local_port=config.port)
        except (OSError, ValueError) as exc:  # ValueError: a host no socket call can take
            where = f"{config.host!r}:{config.port}"
            await self._set_state(
                "error",
                f"Could not listen on {where}: {getattr(exc, 'strerror', None) or exc}. Free the port or change "
                "otlpReceiver.host/port (port 0 picks a free one), then re-enable the receiver.",
            )
            return
        from anyio.abc import SocketAttribute

        port = int(listener.listeners[0].extra(SocketAttribute.local_port))
        self._bound = (config.host, port)
        self._endpoint = f"http://{client_host(config.host)}:{port}"
        self._scope = anyio.CancelScope()
        self._done = anyio.Event()
        self._tg.start_soon(self._serve, listener, self._scope, self._done)
        await self._set_state("listening", None)

    async def _serve(self, listener: Any, scope: anyio.CancelScope, done: anyio.Event) -> None:
        from anyio.abc import SocketAttribute

        server = http.Server(self._handle, self._http_limits)
        try:
            with scope:
                async with anyio.create_task_group() as tg:
                    for each in getattr(listener, "listeners", [listener]):
                        tg.start_soon(self._accept, each.extra(SocketAttribute.raw_socket), server, tg)
        except Exception as exc:
            log.exception("the OTLP receiver stopped unexpectedly")
            self._scope = None
            await self._set_state("error", f"The receiver stopped unexpectedly: {exc}. Re-enable it to restart.")
        finally:
            with anyio.CancelScope(shield=True):
                await listener.aclose()
            done.set()

    async def _stop_listening(self) -> None:
        scope, done = self._scope, self._done
        self._scope = self._done = None
        if scope is None or done is None:
            return
        scope.cancel()
        with anyio.move_on_after(STOP_TIMEOUT):
            await done.wait()
        self._bound = None
        if self._decoder is not None and self._decoder.serves:
            await self._decoder.aclose()  # the connections it was handed end with the listener

    async def close(self) -> None:
        """Stop listening for good (bridge shutdown); bounded by ``STOP_TIMEOUT``."""
        with anyio.CancelScope(shield=True):
            async with self._lock:
                await self._stop_listening()
                if self._decoder is not None:
                    await self._decoder.aclose()
                await self._set_state("stopped", "The bridge stopped.")

    # -- connections and requests ------------------------------------------------------

    async def _accept(self, raw: socket.socket, server: http.Server, tg: TaskGroup) -> None:
        """Accept connections on one listening socket until cancelled; each is handed off or served here."""
        raw.setblocking(False)
        while True:
            await anyio.wait_readable(raw)
            try:
                conn, address = raw.accept()
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as exc:
                if exc.errno not in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM, errno.ECONNABORTED):
                    raise
                log.warning("the OTLP receiver could not accept a connection: %s", exc)
                await anyio.sleep(ACCEPT_RETRY_S)
                continue
            tg.start_soon(self._take, conn, http.peer_text(address), server)

    async def _take(self, conn: socket.socket, peer: str, server: http.Server) -> None:
        try:
            await self._hand_off_or_serve(conn, peer, server)
        except Exception:  # one broken connection must never stop the listener
            log.exception("otlp connection from %s failed", peer)
        finally:
            conn.close()  # our descriptor (already closed with its stream; the decoder has its own copy)

    async def _hand_off_or_serve(self, conn: socket.socket, peer: str, server: http.Server) -> None:
        conn.setblocking(False)
        with contextlib.suppress(OSError):
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._hand_off and self._key is not None:
            handed = await self._decoder_in_use().adopt(conn, peer)
            await self._note_decoder_fault()
            if handed:
                return
        from anyio.abc import SocketStream

        with contextlib.suppress(OSError):  # the client is gone already
            await server.serve_stream(await SocketStream.from_socket(conn), peer)

    def _decoder_in_use(self) -> DecoderProcess:
        """The decoder process's handle (made on first use), with its reaper running."""
        from bridge.receiver.decoder import DecoderProcess, HandOff

        if self._decoder is None:
            hand_off = HandOff(self._tg, self._rules, self._served) if self._hand_off and self._tg else None
            self._decoder = DecoderProcess(self._telemetry_path, hand_off=hand_off)
        self._decoder.placed = self._placed  # held records the process lets go between requests
        if not self._reaping and self._tg is not None:  # stops the process when telemetry goes quiet
            self._reaping = True
            self._tg.start_soon(self._decoder.run)
        return self._decoder

    def _rules(self) -> Rules:
        """What the decoder's checks need now (read before each hand-off, pushed on changes)."""
        from bridge.receiver.decoder_wire import Rules

        return Rules(
            self._key or "",
            self._config.max_body_bytes,
            self._config.max_requests_per_second,
            self._ingest_enabled(),
            sorted(registered_secrets()),
            list(astuple(self._http_limits)),
        )

    async def _handle(self, request: http.Request, body: http.Body) -> http.Response:
        """A request on a connection this process serves itself."""
        if self._intake is None:
            from bridge.receiver.intake import Intake

            self._intake = Intake(self._clock)
        response, outcome = await self._intake.answer(request, body, self._rules(), self._ingest)
        await self._served(outcome)
        return response

    async def _ingest(self, job: Job) -> Ingested:
        return await self._decoder_in_use().ingest(job)  # inflate, parse, flatten, redact, encode, store

    def _placed(self, events: list[CaptureEvent]) -> None:
        if self.on_events is None:
            return
        try:
            self.on_events(events)
        except Exception:
            log.exception("capturing %d OTEL baseline events failed; their records stay in otel_records", len(events))

    async def place_held(self) -> None:
        """The events of every record the decoder still holds back, now (the bridge stops; bounded)."""
        if self._decoder is not None:
            with anyio.CancelScope(shield=True), anyio.move_on_after(STOP_TIMEOUT):
                await self._decoder.expire(everything=True, timeout=STOP_TIMEOUT)

    async def _note_decoder_fault(self) -> None:
        if self._decoder_fault() != self._last_fault:
            await self.refresh()

    async def _served(self, outcome: Outcome) -> None:
        """Count one answered request (served here or by the decoder) and act on what it stored."""
        c = self.counters
        if outcome.status == 200:
            c.accepted += 1
            c.last_batch_at_iso = now_iso()
        else:
            c.rejected += 1
        if outcome.decoder_refused:
            c.decoder_refused += 1
        if outcome.failure is not None:
            log.error("decoding an OTLP request failed in the decoder process: %s", outcome.failure)
        done = outcome.ingested
        if done is not None:
            self._count(done, outcome.storing)
        await self._note_decoder_fault()

    def _count(self, done: Ingested, storing: bool) -> None:
        c = self.counters
        c.records_rejected += done.rejected
        if not storing:
            c.records_discarded += done.count
            return
        if not done.count:
            return
        c.records_stored += done.stored
        if done.fault is None and done.error is None:
            c.records_duplicate += done.count - done.stored
        if done.unplaced is not None:
            log.error("mapping stored OTLP records to capture events failed: %s", done.unplaced)
        if done.events:  # the baseline: what is new (also what a failed request stored)
            self._placed(done.events)
        if done.fault is not None:  # disk full, I/O error…: a fact of the mode, and the exporter retries
            kind, detail = done.fault
            log.warning("storing OTLP records failed on the storage: %s", detail)
            self._db.health.set_fault(kind, detail, "otlp")
            c.storage_refused += 1
        elif done.error is not None:
            log.error("storing OTLP records failed: %s", done.error)
