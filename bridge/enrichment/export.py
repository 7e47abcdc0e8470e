"""The enrichment export path: target, outbox, on-disk queue and sender.

Spans and log records leave the SDK exporters of :mod:`bridge.enrichment.enrich`
into an in-memory :class:`Outbox` (appending is all the event loop does). A
persister task encodes them with the official OTLP protobuf encoders on a
worker thread and writes one file per batch into a bounded
:class:`DiskQueue` (``<dataDir>/export-queue``). A sender task POSTs the
oldest file to ``<endpoint>/v1/traces`` or ``/v1/logs`` and deletes it only
after a 2xx, retrying with capped backoff. So an unreachable endpoint never
slows the stream: batches wait on disk, survive a restart, and when the queue
is full the oldest are dropped, counted and logged.

Only the standard library is imported at module level: the OTLP encoders are
loaded on the worker thread the first time something is encoded.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import anyio

from bridge.redact import redact_text

log = logging.getLogger("bridge.enrichment.export")

Signal = Literal["traces", "logs"]
SIGNALS: tuple[Signal, ...] = ("traces", "logs")
Origin = Literal["config", "env"]
State = Literal["off", "on", "refused", "invalid"]

ENV_ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
ENV_HEADERS = "OTEL_EXPORTER_OTLP_HEADERS"
ENV_PROTOCOL = "OTEL_EXPORTER_OTLP_PROTOCOL"
ENV_TIMEOUT = "OTEL_EXPORTER_OTLP_TIMEOUT"
DEFAULT_TIMEOUT_S = 10.0
_SUPPORTED_PROTOCOLS = ("", "http/protobuf", "http/json")  # we always send protobuf; an HTTP port takes both


def _signal_env(signal: Signal, what: str) -> str:
    return f"OTEL_EXPORTER_OTLP_{signal.upper()}_{what}"


# ===================================================================== target


@dataclass(frozen=True, slots=True)
class SignalTarget:
    url: str
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class ExportTarget:
    """Where batches go; ``endpoint`` is the shown (credential-free) form."""

    origin: Origin
    endpoint: str
    traces: SignalTarget | None
    logs: SignalTarget | None
    timeout_s: float = DEFAULT_TIMEOUT_S

    def for_signal(self, signal: Signal) -> SignalTarget | None:
        return self.traces if signal == "traces" else self.logs


@dataclass(frozen=True, slots=True)
class Plan:
    """The outcome of resolving config, environment and the own receiver."""

    state: State
    target: ExportTarget | None = None
    reason: str | None = None


def shown_url(url: str) -> str:
    """``url`` without user info, query or fragment: safe for logs and status."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:
        return redact_text(url.split("?", 1)[0])
    return redact_text(urllib.parse.urlunsplit((parts.scheme, host + port, parts.path, "", "")))


def signal_url(base: str, signal: Signal) -> str:
    """``<base>/v1/<signal>``; a base that already names a signal path is reduced to its root."""
    root = base.rstrip("/")
    for known in SIGNALS:
        if root.endswith(f"/v1/{known}"):
            root = root[: -len(f"/v1/{known}")]
    return f"{root}/v1/{signal}"


def parse_headers(text: str) -> tuple[tuple[str, str], ...]:
    """The ``k=v,k2=v2`` (URL-encoded) form of ``OTEL_EXPORTER_OTLP_HEADERS``; bad pairs are skipped."""
    out: list[tuple[str, str]] = []
    for pair in text.split(","):
        if "=" not in pair:
            continue
        key, value = pair.split("=", 1)
        key = urllib.parse.unquote(key).strip()
        if key:
            out.append((key, urllib.parse.unquote(value).strip()))
    return tuple(out)


def _valid_url(url: str) -> str | None:
    """Why ``url`` cannot be an OTLP/HTTP endpoint, or None."""
    try:
        parts = urllib.parse.urlsplit(url)
        _ = parts.port
    except ValueError as exc:
        return f"{shown_url(url)} is not a valid URL ({exc})"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{shown_url(url)} is not an http:// or https:// URL"
    return None


def _timeout(env: Mapping[str, str]) -> float:
    raw = env.get(ENV_TIMEOUT, "").strip()
    try:
        ms = float(raw) if raw else DEFAULT_TIMEOUT_S * 1000
    except ValueError:
        ms = DEFAULT_TIMEOUT_S * 1000
    return max(0.5, min(ms / 1000, 60.0))


def resolve(endpoint: str | None, headers: Mapping[str, str], env: Mapping[str, str]) -> Plan:
    """The export target: ``export.endpoint`` (+ ``export.headers``), else the standard env vars, else off.

    Pure: reads only its arguments.
    """
    timeout = _timeout(env)
    if endpoint:
        bad = _valid_url(endpoint)
        if bad:
            return Plan("invalid", reason=f"export.endpoint: {bad}")
        pairs = tuple(headers.items())
        return Plan(
            "on",
            ExportTarget(
                "config",
                shown_url(endpoint),
                SignalTarget(signal_url(endpoint, "traces"), pairs),
                SignalTarget(signal_url(endpoint, "logs"), pairs),
                timeout,
            ),
        )
    base = env.get(ENV_ENDPOINT, "").strip()
    common_headers = parse_headers(env.get(ENV_HEADERS, ""))
    per_signal: dict[Signal, SignalTarget | None] = {}
    for signal in SIGNALS:
        protocol = env.get(_signal_env(signal, "PROTOCOL"), env.get(ENV_PROTOCOL, "")).strip().lower()
        specific = env.get(_signal_env(signal, "ENDPOINT"), "").strip()
        url = specific or (signal_url(base, signal) if base else "")
        if not url:
            per_signal[signal] = None
            continue
        if protocol not in _SUPPORTED_PROTOCOLS:
            return Plan(
                "invalid",
                reason=f"{ENV_PROTOCOL}={protocol} is not supported: the bridge exports OTLP/HTTP (http/protobuf)",
            )
        bad = _valid_url(url)
        if bad:
            name = _signal_env(signal, "ENDPOINT") if specific else ENV_ENDPOINT
            return Plan("invalid", reason=f"{name}: {bad}")
        extra = parse_headers(env.get(_signal_env(signal, "HEADERS"), ""))
        merged = dict(common_headers)
        merged.update(extra)
        per_signal[signal] = SignalTarget(url, tuple(merged.items()))
    traces, logs = per_signal["traces"], per_signal["logs"]
    if traces is None and logs is None:
        return Plan("off", reason="no export.endpoint and no OTEL_EXPORTER_OTLP_ENDPOINT: export is off")
    shown = shown_url(base) if base else shown_url((traces or logs).url)  # type: ignore[union-attr]
    return Plan("on", ExportTarget("env", shown, traces, logs, timeout))


_WILDCARD = frozenset({"0.0.0.0", "::", ""})


def _local(host: str) -> bool:
    h = host.strip("[]").lower()
    return h in _WILDCARD or h in ("localhost", "::1", "ip6-localhost") or h.startswith("127.")


def _host_port(url: str) -> tuple[str, int] | None:
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None
    return (parts.hostname or "").lower(), port


def same_listener(a: tuple[str, int], b: tuple[str, int]) -> bool:
    """Whether two host:port pairs may name the same local listener."""
    if a[1] != b[1]:
        return False
    ha, hb = a[0].strip("[]").lower(), b[0].strip("[]").lower()
    return ha == hb or (_local(ha) and _local(hb)) or ha in _WILDCARD or hb in _WILDCARD


def own_receiver_refusal(target: ExportTarget, receivers: Sequence[tuple[str, int]]) -> str | None:
    """Why ``target`` is refused (it is the bridge's own OTLP receiver: a loop), or None."""
    for signal in SIGNALS:
        sig = target.for_signal(signal)
        if sig is None:
            continue
        where = _host_port(sig.url)
        if where is None:
            continue
        for receiver in receivers:
            if same_listener(where, receiver):
                return (
                    f"the export endpoint {shown_url(sig.url)} is the bridge's own OTLP receiver "
                    f"({receiver[0]}:{receiver[1]}); exporting there would loop, so export is refused. "
                    "Point export.endpoint at another collector."
                )
    return None


def receiver_addresses(host: str, port: int, enabled: bool, runtime_endpoint: str | None) -> list[tuple[str, int]]:
    """The own receiver's configured and actually bound addresses."""
    out: list[tuple[str, int]] = []
    if enabled and port:
        out.append((host.lower(), port))
    if runtime_endpoint:
        bound = _host_port(runtime_endpoint)
        if bound is not None:
            out.append(bound)
    return out


# ===================================================================== outbox


class Outbox:
    """Finished spans and log records waiting to be encoded (thread-safe, bounded).

    The SDK exporters append on the event loop; the persister takes
    everything on a worker thread. Past ``max_records`` per signal the oldest
    records are dropped and counted.
    """

    def __init__(self, max_records: int = 20_000) -> None:
        self._lock = threading.Lock()
        self._items: dict[Signal, deque[Any]] = {s: deque() for s in SIGNALS}
        self.max_records = max_records
        self.dropped_records = 0
        self.wake: Callable[[], None] = lambda: None

    def add(self, signal: Signal, records: Sequence[Any]) -> None:
        dropped = 0
        with self._lock:
            items = self._items[signal]
            items.extend(records)
            while len(items) > self.max_records:
                items.popleft()
                dropped += 1
            self.dropped_records += dropped
        if dropped:
            log.warning("export outbox full: dropped %d oldest %s records (disk writes are behind)", dropped, signal)
        self.wake()

    def count_dropped(self, records: int) -> None:
        with self._lock:
            self.dropped_records += records

    def take(self) -> dict[Signal, list[Any]]:
        with self._lock:
            out = {s: list(q) for s, q in self._items.items()}
            for q in self._items.values():
                q.clear()
        return out

    def __len__(self) -> int:
        with self._lock:
            return sum(len(q) for q in self._items.values())


def encode(signal: Signal, records: Sequence[Any]) -> bytes:
    """An ``Export{Trace,Logs}ServiceRequest`` as protobuf bytes, by the official encoders."""
    if signal == "traces":
        from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

        return bytes(encode_spans(records).SerializeToString())
    from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs

    return bytes(encode_logs(records).SerializeToString())


# ===================================================================== disk queue


@dataclass(frozen=True, slots=True)
class QueuedBatch:
    seq: int
    signal: Signal
    path: Path
    size: int


_NAME = re.compile(r"^(\d{16})-(traces|logs)\.pb$")


class DiskQueue:
    """One file per encoded batch, oldest first, bounded by count and bytes.

    Files are written under a temporary name and renamed into place, so a
    crash never leaves a half batch. When a bound is exceeded the oldest
    batches (never the one being sent) are deleted and counted in
    ``dropped_batches``. Methods are blocking: call them from a worker thread.
    """

    def __init__(self, root: Path, *, max_batches: int = 2000, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.root = root
        self.max_batches = max_batches
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._batches: deque[QueuedBatch] = deque()
        self._bytes = 0
        self._in_flight: set[int] = set()
        self.dropped_batches = 0
        self.dropped_bytes = 0
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        found: list[QueuedBatch] = []
        for entry in root.iterdir():
            if entry.name.endswith(".tmp"):
                entry.unlink(missing_ok=True)  # a write cut short by a crash
                continue
            match = _NAME.match(entry.name)
            if match:
                sig: Signal = "traces" if match.group(2) == "traces" else "logs"
                found.append(QueuedBatch(int(match.group(1)), sig, entry, entry.stat().st_size))
        found.sort(key=lambda b: b.seq)
        self._batches.extend(found)
        self._bytes = sum(b.size for b in found)
        self._next = (found[-1].seq + 1) if found else 1
        dropped = self._enforce()
        self._unlink(dropped)

    # ------------------------------------------------------------ state
    @property
    def depth(self) -> int:
        return len(self._batches)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    # ------------------------------------------------------------ writing
    def put(self, signal: Signal, body: bytes) -> list[QueuedBatch]:
        """Store one batch durably; returns the batches dropped to stay within bounds."""
        with self._lock:
            seq = self._next
            self._next += 1
        name = f"{seq:016d}-{signal}.pb"
        tmp = self.root / f".{name}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(body)
            fh.flush()
            os.fsync(fh.fileno())
        final = self.root / name
        os.replace(tmp, final)
        with self._lock:
            self._batches.append(QueuedBatch(seq, signal, final, len(body)))
            self._bytes += len(body)
            dropped = self._enforce()
        self._unlink(dropped)
        return dropped

    def _enforce(self) -> list[QueuedBatch]:
        dropped: list[QueuedBatch] = []
        while len(self._batches) > self.max_batches or self._bytes > self.max_bytes:
            victim = next((b for b in self._batches if b.seq not in self._in_flight), None)
            if victim is None:
                break
            self._batches.remove(victim)
            self._bytes -= victim.size
            self.dropped_batches += 1
            self.dropped_bytes += victim.size
            dropped.append(victim)
        return dropped

    @staticmethod
    def _unlink(batches: Sequence[QueuedBatch]) -> None:
        for batch in batches:
            batch.path.unlink(missing_ok=True)

    # ------------------------------------------------------------ sending
    def claim(self) -> QueuedBatch | None:
        """The oldest batch not being sent, now marked as being sent."""
        with self._lock:
            for batch in self._batches:
                if batch.seq not in self._in_flight:
                    self._in_flight.add(batch.seq)
                    return batch
        return None

    def release(self, batch: QueuedBatch) -> None:
        """Sending failed: the batch stays for a later attempt."""
        with self._lock:
            self._in_flight.discard(batch.seq)

    def done(self, batch: QueuedBatch) -> None:
        """The batch was delivered (or refused for good): forget it."""
        with self._lock:
            self._in_flight.discard(batch.seq)
            try:
                self._batches.remove(batch)
            except ValueError:
                return
            self._bytes -= batch.size
        batch.path.unlink(missing_ok=True)

    def pending(self) -> list[QueuedBatch]:
        with self._lock:
            return list(self._batches)


# ===================================================================== http


@dataclass(frozen=True, slots=True)
class PostResult:
    status: int | None  # None: no HTTP answer (connection refused, timeout, …)
    error: str | None = None
    retry_after_s: float | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def permanent(self) -> bool:
        """The batch itself is bad: sending it again cannot succeed (OTLP/HTTP: 400, 413, 415)."""
        return self.status in (400, 413, 415)


PostFn = Callable[[str, bytes, Sequence[tuple[str, str]], float], PostResult]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # an OTLP endpoint does not redirect; never follow one elsewhere


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def post_http(url: str, body: bytes, headers: Sequence[tuple[str, str]], timeout_s: float) -> PostResult:
    """POST one protobuf batch (blocking; run on a worker thread)."""
    host = (urllib.parse.urlsplit(url).hostname or "").lower()
    proxies = urllib.request.ProxyHandler({}) if _local(host) else urllib.request.ProxyHandler()
    opener = urllib.request.build_opener(proxies, _NoRedirect())
    request = urllib.request.Request(url, data=body, method="POST")
    for key, value in headers:
        request.add_header(key, value)
    request.add_header("Content-Type", "application/x-protobuf")
    try:
        with opener.open(request, timeout=timeout_s) as response:
            response.read()
            return PostResult(int(response.status))
    except urllib.error.HTTPError as exc:
        with contextlib.suppress(Exception):
            exc.read()
        return PostResult(exc.code, f"HTTP {exc.code} {exc.reason}", _retry_after(exc.headers.get("Retry-After")))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        return PostResult(None, redact_text(str(reason)) or type(exc).__name__)


# ===================================================================== the running export


@dataclass(frozen=True, slots=True)
class QueueLimits:
    max_batches: int = 2000
    max_bytes: int = 64 * 1024 * 1024
    max_outbox_records: int = 20_000
    records_per_batch: int = 512


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    initial_s: float = 0.5
    cap_s: float = 30.0

    def delay(self, failures: int) -> float:
        return float(min(self.cap_s, self.initial_s * (2 ** max(0, failures - 1))))


@dataclass
class ExportCounters:
    sent_batches: int = 0
    sent_bytes: int = 0
    rejected_batches: int = 0  # permanent HTTP errors: the batch was dropped
    failed_attempts: int = 0
    consecutive_failures: int = 0
    last_error: str | None = None
    last_error_at: float | None = None
    last_sent_at: float | None = None
    drops_logged: int = 0
    drop_logged_at: float = field(default=0.0)


class _Wake:
    """A level-triggered wake-up that resets when consumed."""

    def __init__(self) -> None:
        self._event = anyio.Event()

    def set(self) -> None:
        self._event.set()

    async def wait(self, timeout: float | None = None) -> bool:
        with anyio.move_on_after(timeout):
            await self._event.wait()
        fired = self._event.is_set()
        if fired:
            self._event = anyio.Event()
        return fired


DROP_LOG_EVERY_S = 30.0


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z"


class OtlpExport:
    """Persister and sender tasks around one :class:`DiskQueue`.

    ``refuse(target)`` is asked before every send (the own receiver may have
    moved); while it answers, nothing is sent and the queue waits.
    """

    def __init__(
        self,
        queue_dir: Path,
        *,
        limits: QueueLimits | None = None,
        retry: RetryPolicy | None = None,
        post: PostFn = post_http,
        refuse: Callable[[ExportTarget], str | None] = lambda _t: None,
        encoder: Callable[[Signal, Sequence[Any]], bytes] = encode,
    ) -> None:
        self.queue_dir = queue_dir
        self.limits = limits or QueueLimits()
        self.retry = retry or RetryPolicy()
        self._post = post
        self._refuse = refuse
        self._encode = encoder
        self.outbox = Outbox(self.limits.max_outbox_records)
        self.queue: DiskQueue | None = None
        self.counters = ExportCounters()
        self.target: ExportTarget | None = None
        self.refused: str | None = None
        self._persist_wake = _Wake()
        self._send_wake = _Wake()  # new data
        self._kick = _Wake()  # target changed: retry at once
        self._scope: anyio.CancelScope | None = None
        self._closed = False
        self._persist_lock = anyio.Lock()

    # ------------------------------------------------------------ control
    async def open(self) -> None:
        """Load (or create) the on-disk queue; blocking I/O on a worker thread."""
        limits = self.limits
        self.queue = await anyio.to_thread.run_sync(
            lambda: DiskQueue(self.queue_dir, max_batches=limits.max_batches, max_bytes=limits.max_bytes)
        )
        self.outbox.wake = self._persist_wake.set  # the SDK exporters run on the event loop
        if self.queue.dropped_batches:
            self._log_drops(self.queue.dropped_batches, force=True)

    def set_target(self, target: ExportTarget | None) -> None:
        if target != self.target:
            self.counters.consecutive_failures = 0
        self.target = target
        self.refused = None
        self._kick.set()
        self._send_wake.set()

    async def run(self) -> None:
        """Persist and send until :meth:`close`."""
        if self._closed:
            return
        if self.queue is None:
            await self.open()
        with anyio.CancelScope() as scope:
            self._scope = scope
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._persist_loop)
                tg.start_soon(self._send_loop)

    async def close(self, budget_s: float = 0.5) -> None:
        """Write what is still in memory to disk (bounded), then stop; unsent batches stay queued."""
        self._closed = True
        with anyio.move_on_after(budget_s, shield=True):
            await self.persist()
        if self._scope is not None:
            self._scope.cancel()

    # ------------------------------------------------------------ persisting
    async def persist(self) -> int:
        """Encode and store everything in the outbox; returns batches written."""
        if self.queue is None or not len(self.outbox):
            return 0
        async with self._persist_lock:
            written = await anyio.to_thread.run_sync(self._persist_sync)
        if written:
            self._send_wake.set()
        return written

    def _persist_sync(self) -> int:
        queue = self.queue
        assert queue is not None
        written = 0
        dropped_before = queue.dropped_batches
        per = self.limits.records_per_batch
        for signal, records in self.outbox.take().items():
            for start in range(0, len(records), per):
                chunk = records[start : start + per]
                try:
                    body = self._encode(signal, chunk)
                except Exception:
                    log.exception("encoding %d %s records for export failed; they are dropped", len(chunk), signal)
                    self.outbox.count_dropped(len(chunk))
                    continue
                try:
                    queue.put(signal, body)
                except OSError as exc:
                    log.warning("writing an export batch to %s failed (%s); %d records dropped",
                                self.queue_dir, exc, len(chunk))  # fmt: skip
                    self.outbox.count_dropped(len(chunk))
                    continue
                written += 1
        dropped = queue.dropped_batches - dropped_before
        if dropped:
            self._log_drops(dropped)
        return written

    def _log_drops(self, dropped: int, force: bool = False) -> None:
        """Every drop is logged; under a sustained outage, as one summary line per interval."""
        c = self.counters
        c.drops_logged += dropped
        now = time.monotonic()
        if force or c.drop_logged_at == 0.0 or now - c.drop_logged_at >= DROP_LOG_EVERY_S:
            queue = self.queue
            log.warning(
                "export queue full (%s batches / %s bytes max): dropped the %d oldest batches "
                "(%d dropped in total); the endpoint %s has not taken them",
                self.limits.max_batches, self.limits.max_bytes, c.drops_logged,
                queue.dropped_batches if queue else c.drops_logged,
                self.target.endpoint if self.target else "(none)",
            )  # fmt: skip
            c.drops_logged = 0
            c.drop_logged_at = now

    async def _persist_loop(self) -> None:
        while True:
            await self._persist_wake.wait()
            try:
                await self.persist()
            except Exception:
                log.exception("persisting export batches failed")

    # ------------------------------------------------------------ sending
    async def _send_loop(self) -> None:
        queue = self.queue
        assert queue is not None
        while True:
            target = self.target
            if target is None:
                await self._send_wake.wait()
                continue
            refusal = self._refuse(target)
            if refusal != self.refused:
                self.refused = refusal
                if refusal:
                    log.warning("%s", refusal)
            if refusal:
                await self._kick.wait(5.0)  # the receiver may move; look again now and then
                continue
            batch = queue.claim()
            if batch is None:
                await self._send_wake.wait()
                continue
            sig = target.for_signal(batch.signal)
            if sig is None:  # this signal is not exported (only the other signal's endpoint is set)
                await anyio.to_thread.run_sync(queue.done, batch)
                continue
            result = await anyio.to_thread.run_sync(
                self._send_one, batch, sig, target.timeout_s, abandon_on_cancel=True
            )
            if result.ok or result.permanent:
                await anyio.to_thread.run_sync(queue.done, batch)
                self._record_success(batch, result, target)
                continue
            queue.release(batch)
            delay = self._record_failure(result, target)
            await self._kick.wait(delay)

    def _send_one(self, batch: QueuedBatch, sig: SignalTarget, timeout_s: float) -> PostResult:
        try:
            body = batch.path.read_bytes()
        except FileNotFoundError:
            return PostResult(204)  # dropped by the bound while we picked it: nothing to send
        return self._post(sig.url, body, sig.headers, timeout_s)

    def _record_success(self, batch: QueuedBatch, result: PostResult, target: ExportTarget) -> None:
        c = self.counters
        if result.ok:
            if c.consecutive_failures:
                log.info("export endpoint %s is reachable again; sending the queue", target.endpoint)
            c.sent_batches += 1
            c.sent_bytes += batch.size
            c.last_sent_at = time.time()
        else:
            c.rejected_batches += 1
            c.last_error = f"{result.error}: the endpoint refused a {batch.signal} batch; it was dropped"
            c.last_error_at = time.time()
            log.warning("export endpoint %s refused a %s batch for good (%s); dropped it",
                        target.endpoint, batch.signal, result.error)  # fmt: skip
        c.consecutive_failures = 0

    def _record_failure(self, result: PostResult, target: ExportTarget) -> float:
        c = self.counters
        c.failed_attempts += 1
        c.consecutive_failures += 1
        c.last_error = result.error or f"HTTP {result.status}"
        c.last_error_at = time.time()
        delay = self.retry.delay(c.consecutive_failures)
        if result.retry_after_s is not None:
            delay = min(self.retry.cap_s, max(delay, result.retry_after_s))
        if c.consecutive_failures == 1 or c.consecutive_failures % 20 == 0:
            log.warning("export to %s failed (%s); %d batches wait on disk, retrying in %.1f s",
                        target.endpoint, c.last_error, self.queue.depth if self.queue else 0, delay)  # fmt: skip
        return delay

    # ------------------------------------------------------------ status
    def metrics(self) -> dict[str, Any]:
        c = self.counters
        queue = self.queue
        return {
            "queueBatches": queue.depth if queue else 0,
            "queueBytes": queue.size_bytes if queue else 0,
            "droppedBatches": queue.dropped_batches if queue else 0,
            "droppedRecords": self.outbox.dropped_records,
            "sentBatches": c.sent_batches,
            "rejectedBatches": c.rejected_batches,
            "failedAttempts": c.failed_attempts,
            "consecutiveFailures": c.consecutive_failures,
            "lastError": c.last_error,
            "lastErrorAtIso": _iso(c.last_error_at),
            "lastSentAtIso": _iso(c.last_sent_at),
        }
