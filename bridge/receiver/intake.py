"""What one OTLP/HTTP request gets, in whichever process serves its connection.

The bridge hands the connections it accepts to its decoder process
(:mod:`bridge.receiver.decoder`), and serves one itself only when the decoder cannot
take it. Both run the same steps from here: the checks (path, method, key, rate,
media type, size), the decoding job and the answer. With the answer comes an
:class:`~bridge.receiver.decoder_wire.Outcome`: the facts the bridge counts and acts
on (the counters, the OTEL baseline, a storage fault), sent back to it by the decoder.

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

import math
import time
from collections.abc import Awaitable, Callable

import anyio

from bridge.receiver import auth, decode, http, ratelimit
from bridge.receiver.decode import Format, Rejected
from bridge.receiver.decoder_wire import Ingested, Job, Outcome, Rules

# Bodies being read, inflated and decoded at once: bounds memory to a few times maxBodyBytes.
BODIES_IN_FLIGHT = 4
STORAGE_RETRY_AFTER = b"2"  # seconds; the storage probe looks every 0.5 s

Ingest = Callable[[Job], Awaitable[Ingested]]


class DecoderUnavailable(Exception):
    """The decoder cannot take the job now; retry after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class DecoderFailed(Exception):
    """The decoder met an unexpected error on this job (a bug, or no memory): its sentence, redacted."""


def _response(
    fmt: Format, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None
) -> http.Response:
    body = decode.encode_status(fmt, status, message)
    return http.Response(status, body, [(b"content-type", fmt.content_type), *(headers or [])])


class Intake:
    """One process's request steps: the rate limiter's buckets and the bound on bodies in flight."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._rate = 0
        self._buckets = ratelimit.for_rate(1)
        self._bodies = anyio.Semaphore(BODIES_IN_FLIGHT)

    async def answer(
        self, request: http.Request, body: http.Body, rules: Rules, ingest: Ingest
    ) -> tuple[http.Response, Outcome]:
        """The answer to ``request`` and what it says for the bridge's counters."""
        fmt = decode.media_format(request.header("content-type")) or Format.JSON
        return await self._answer(request, body, fmt, rules, ingest)

    async def _answer(
        self, request: http.Request, body: http.Body, fmt: Format, rules: Rules, ingest: Ingest
    ) -> tuple[http.Response, Outcome]:
        def refused(
            status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None
        ) -> tuple[http.Response, Outcome]:
            return _response(fmt, status, message, headers), Outcome(status, rules.storing)

        signal = decode.SIGNAL_BY_PATH.get(request.path.rstrip("/") or "/")
        if signal is None:
            where = request.path[:80]
            return refused(404, f"No OTLP signal at {where}; use /v1/logs, /v1/traces or /v1/metrics.")
        if request.method != "POST":
            return refused(405, "Only POST is accepted.", [(b"allow", b"POST")])
        presented = request.headers.get(auth.HEADER_NAME)
        if not rules.key or not auth.key_matches(presented, rules.key):
            what = "is missing" if presented is None else "is wrong"
            return refused(401, f"The {auth.HEADER_NAME} header {what}; its value is in <dataDir>/otlp.key.")
        if rules.max_requests_per_second != self._rate:
            self._rate = rules.max_requests_per_second
            self._buckets = ratelimit.for_rate(self._rate)
        wait = self._buckets.take(rules.key, self._clock())
        if wait > 0:
            retry = str(max(1, math.ceil(wait))).encode()
            message = f"Rate limit of {rules.max_requests_per_second} requests/s exceeded; retry later."
            return refused(429, message, [(b"retry-after", retry)])
        body_format = decode.media_format(request.header("content-type"))
        if body_format is None:
            return refused(415, "Content-Type must be application/x-protobuf or application/json.")
        encoding = (request.header("content-encoding") or "identity").strip().lower()
        if encoding not in ("identity", "gzip", "x-gzip"):
            return refused(415, f"Content-Encoding {encoding[:40]!r} is not supported; use gzip or none.")
        limit = rules.max_body_bytes
        storing = rules.storing
        async with self._bodies:
            try:
                raw = await body.read(limit)
            except http.BodyTooLarge:
                return refused(413, f"Body exceeds {limit} bytes (otlpReceiver.maxBodyBytes).")
            job = Job(signal.value, body_format.value, raw, encoding != "identity", limit, int(time.time() * 1000),
                      storing)  # fmt: skip
            del raw
            try:
                done = await ingest(job)  # inflate, parse, flatten, redact, encode, store
            except Rejected as exc:
                return refused(exc.status, exc.reason)
            except DecoderUnavailable as exc:
                retry = str(max(1, math.ceil(exc.retry_after))).encode()
                response = _response(fmt, 503, exc.message, [(b"retry-after", retry)])
                return response, Outcome(503, storing, decoder_refused=True)
            except DecoderFailed as exc:
                response = _response(fmt, 500, "Internal error while decoding the request; see the bridge log.")
                return response, Outcome(500, storing, failure=str(exc))
            finally:
                del job
        outcome = Outcome(200, storing, done)
        if storing and done.count and done.fault is not None:  # disk full, I/O error…: the exporter retries
            _kind, detail = done.fault
            message = f"The bridge cannot store telemetry now ({detail}); retry later."
            outcome.status = 503
            return _response(fmt, 503, message, [(b"retry-after", STORAGE_RETRY_AFTER)]), outcome
        if storing and done.count and done.error is not None:
            outcome.status = 503
            return _response(fmt, 503, "The store could not take the batch; retry later.",
                             [(b"retry-after", b"1")]), outcome  # fmt: skip
        payload = decode.encode_response(signal, fmt, done.rejected, done.problems)
        return http.Response(200, payload, [(b"content-type", body_format.content_type)]), outcome
