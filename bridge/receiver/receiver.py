"""The OTLP/HTTP receiver service: the OTEL baseline's front door.

It binds ``otlpReceiver.host:port``, checks the key, rate-limits per key,
reads bounded bodies, has its decoder process (:mod:`bridge.receiver.decoder`)
decode and store them in the telemetry store, answers as
OTLP/HTTP prescribes, and reports its state (``listening`` / ``stopped`` /
``error``) through ``otel-receiver-status`` notifications and
``<dataDir>/runtime.json``. A failure to bind never takes the bridge down: it
becomes state ``error`` with a message saying what to do.

Request pipeline and answers:

| step | refusal |
|---|---|
| path is ``/v1/logs``, ``/v1/traces`` or ``/v1/metrics`` | 404 |
| method is POST | 405 |
| ``x-capture-bridge-key`` matches (constant time) | 401 |
| token bucket of the key has a token | 429 + ``Retry-After`` |
| ``Content-Type`` protobuf or JSON, ``Content-Encoding`` gzip or none | 415 |
| body (and its inflated form) within ``maxBodyBytes`` | 413 |
| body decodes into the signal's ``Export*ServiceRequest`` | 400 + reason |
| the decoder process takes the job | 503 + ``Retry-After`` |
| records stored (duplicates ignored) | 503 + ``Retry-After`` |

Success is 200 with an ``Export*ServiceResponse`` whose ``partial_success``
counts the elements OTLP calls invalid.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import anyio
from anyio.abc import TaskGroup

from bridge.clock import now_iso
from bridge.config.model import OtlpReceiverConfig
from bridge.config.paths import TELEMETRY_FILE
from bridge.receiver import auth, decode, http, ratelimit
from bridge.receiver.decode import Format, Rejected
from bridge.receiver.status import NOTIFICATION, Counters, ReceiverStatus, State, client_host, write_runtime
from bridge.redact import register_secret
from bridge.store.db import Database

if TYPE_CHECKING:
    from bridge.receiver.decoder import DecoderProcess

log = logging.getLogger(__name__)


# Bodies being read, inflated and decoded at once: bounds memory to a few times maxBodyBytes.
BODIES_IN_FLIGHT = 4
STOP_TIMEOUT = 1.5
STORAGE_RETRY_AFTER = b"2"  # seconds; the storage probe looks every 0.5 s


def _response(
    fmt: Format, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None
) -> http.Response:
    body = decode.encode_status(fmt, status, message)
    return http.Response(status, body, [(b"content-type", fmt.content_type), *(headers or [])])


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
        clock: Callable[[], float] = time.monotonic,
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
        self._clock = clock
        self._http_limits = http_limits or http.Limits()
        self._key: str | None = None
        self._buckets = ratelimit.for_rate(config.max_requests_per_second)
        self._bodies = anyio.Semaphore(BODIES_IN_FLIGHT)
        self._decoder = decoder  # made on the first request (its module is not needed before)
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
        # Called on the event loop with the records each request newly stored (after the commit).
        self.on_records: Callable[[list[Any]], None] | None = None
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
        if config.max_requests_per_second != old.max_requests_per_second:
            self._buckets = ratelimit.for_rate(config.max_requests_per_second)
        same_address = (config.host, config.port) == (old.host, old.port)
        if not force and config.enabled and self.listening and same_address:
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
        try:
            with scope:
                await http.Server(self._handle, self._http_limits).serve(listener)
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

    async def close(self) -> None:
        """Stop listening for good (bridge shutdown); bounded by ``STOP_TIMEOUT``."""
        with anyio.CancelScope(shield=True):
            async with self._lock:
                await self._stop_listening()
                if self._decoder is not None:
                    await self._decoder.aclose()
                await self._set_state("stopped", "The bridge stopped.")

    # -- requests ---------------------------------------------------------------

    async def _handle(self, request: http.Request, body: http.Body) -> http.Response:
        fmt = decode.media_format(request.header("content-type")) or Format.JSON
        response = await self._answer(request, body, fmt)
        if response.status == 200:
            self.counters.accepted += 1
            self.counters.last_batch_at_iso = now_iso()
        else:
            self.counters.rejected += 1
        return response

    async def _answer(self, request: http.Request, body: http.Body, fmt: Format) -> http.Response:
        signal = decode.SIGNAL_BY_PATH.get(request.path.rstrip("/") or "/")
        if signal is None:
            where = request.path[:80]
            return _response(fmt, 404, f"No OTLP signal at {where}; use /v1/logs, /v1/traces or /v1/metrics.")
        if request.method != "POST":
            return _response(fmt, 405, "Only POST is accepted.", [(b"allow", b"POST")])
        presented = request.headers.get(auth.HEADER_NAME)
        if self._key is None or not auth.key_matches(presented, self._key):
            what = "is missing" if presented is None else "is wrong"
            return _response(fmt, 401, f"The {auth.HEADER_NAME} header {what}; its value is in <dataDir>/otlp.key.")
        wait = self._buckets.take(self._key, self._clock())
        if wait > 0:
            retry = str(max(1, math.ceil(wait))).encode()
            limit = self._config.max_requests_per_second
            message = f"Rate limit of {limit} requests/s exceeded; retry later."
            return _response(fmt, 429, message, [(b"retry-after", retry)])
        body_format = decode.media_format(request.header("content-type"))
        if body_format is None:
            return _response(fmt, 415, "Content-Type must be application/x-protobuf or application/json.")
        encoding = (request.header("content-encoding") or "identity").strip().lower()
        if encoding not in ("identity", "gzip", "x-gzip"):
            return _response(fmt, 415, f"Content-Encoding {encoding[:40]!r} is not supported; use gzip or none.")
        limit = self._config.max_body_bytes
        storing = self._ingest_enabled()
        async with self._bodies:
            try:
                raw = await body.read(limit)
            except http.BodyTooLarge:
                return _response(fmt, 413, f"Body exceeds {limit} bytes (otlpReceiver.maxBodyBytes).")
            from bridge.receiver.decoder import DecoderFailed, DecoderProcess, DecoderUnavailable
            from bridge.receiver.decoder_wire import Job

            if self._decoder is None:
                self._decoder = DecoderProcess(self._telemetry_path)
            if not self._reaping and self._tg is not None:  # stops the process when telemetry goes quiet
                self._reaping = True
                self._tg.start_soon(self._decoder.run)
            job = Job(signal.value, body_format.value, raw, encoding != "identity", limit, int(time.time() * 1000),
                      storing)  # fmt: skip
            del raw
            fault = self._decoder.fault
            try:
                done = await self._decoder.ingest(job)  # inflate, parse, flatten, redact, encode, store
            except Rejected as exc:
                return _response(fmt, exc.status, exc.reason)
            except DecoderUnavailable as exc:
                self.counters.decoder_refused += 1
                retry = str(max(1, math.ceil(exc.retry_after))).encode()
                return _response(fmt, 503, exc.message, [(b"retry-after", retry)])
            except DecoderFailed as exc:
                log.error("decoding an OTLP request failed in the decoder process: %s", exc)
                return _response(fmt, 500, "Internal error while decoding the request; see the bridge log.")
            finally:
                del job
                if self._decoder.fault != fault:
                    await self.refresh()
        rejected, problems = done.rejected, done.problems
        self.counters.records_rejected += rejected
        if not storing:
            self.counters.records_discarded += done.count
        elif done.count:
            self.counters.records_stored += done.stored
            if done.fault is None and done.error is None:
                self.counters.records_duplicate += done.count - done.stored
            if done.baseline and self.on_records is not None:
                try:
                    self.on_records(done.baseline)  # the baseline: what is new (also what a failed request stored)
                except Exception:
                    log.exception("capturing stored OTLP records failed; they stay in otel_records")
            if done.fault is not None:  # disk full, I/O error…: a fact of the mode, and the exporter retries
                kind, detail = done.fault
                log.warning("storing OTLP records failed on the storage: %s", detail)
                self._db.health.set_fault(kind, detail, "otlp")
                self.counters.storage_refused += 1
                return _response(
                    fmt,
                    503,
                    f"The bridge cannot store telemetry now ({detail}); retry later.",
                    [(b"retry-after", STORAGE_RETRY_AFTER)],
                )
            if done.error is not None:
                log.error("storing OTLP records failed: %s", done.error)
                return _response(fmt, 503, "The store could not take the batch; retry later.",
                                 [(b"retry-after", b"1")])  # fmt: skip
        payload = decode.encode_response(signal, fmt, rejected, problems)
        return http.Response(200, payload, [(b"content-type", body_format.content_type)])
