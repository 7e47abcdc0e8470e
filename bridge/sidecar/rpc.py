"""The codex app-server JSON-RPC client: ids, pending requests, timeouts, dispatch.

Transport-agnostic: it reads batches of frames from a
:class:`~bridge.sidecar.framing.FrameTransport`. Each frame is decoded once
(a reused msgspec Decoder into an :class:`Envelope`); responses resolve their
pending request, server→client requests go to a registered handler or are
answered -32601, and notifications are handed to listeners a batch at a time
(the stream's hot path never awaits per frame). Bad frames are counted and
reported, never fatal: one odd frame must not take the stream down. The
values it hands out and counts (callback types, faults, counters, errors) are
in :mod:`.rpc_types`.

An *observer* client (attach mode: the daemon and its threads belong to the
user) never answers a server request, not even with an error: handlers only
record them, and :meth:`RpcClient.respond` refuses.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
import msgspec
from anyio.abc import TaskGroup

from bridge import errors
from bridge.errors import BridgeError
from bridge.redact import redact_text
from bridge.sidecar.framing import FrameTransport, Oversized
from bridge.sidecar.protocol import (
    KNOWN_NOTIFICATIONS,
    Envelope,
    OutError,
    OutNotification,
    OutRequest,
    OutResult,
    RpcErrorObject,
)
from bridge.sidecar.rpc_types import (
    PREVIEW_CHARS,
    FaultListener,
    NotificationListener,
    ProtocolFault,
    RequestHandler,
    RpcCounters,
    Tap,
    closed_error,
    codex_error,
    preview,
)

log = logging.getLogger("bridge.sidecar.rpc")

T = TypeVar("T")

MAX_PENDING = 256
METHOD_NOT_FOUND = -32601

class _Pending:
    __slots__ = ("done", "error", "method", "result")

    def __init__(self, method: str) -> None:
        self.method = method
        self.done = anyio.Event()
        self.result: msgspec.Raw | None = None
        self.error: BridgeError | None = None


class RpcClient:
    """A JSON-RPC client for one connection to codex app-server."""

    def __init__(
        self,
        transport: FrameTransport,
        *,
        request_timeout: float = 30.0,
        max_pending: int = MAX_PENDING,
        observer: bool = False,
    ) -> None:
        self._transport = transport
        self.observer = observer
        self.request_timeout = request_timeout
        self._max_pending = max_pending
        self._next_id = 0
        self._pending: dict[int | str, _Pending] = {}
        self._listeners: list[NotificationListener] = []
        self._fault_listeners: list[FaultListener] = []
        self._handlers: dict[str, RequestHandler] = {}
        self._taps: list[Tap] = []
        self._backpressure: list[Callable[[], Awaitable[None]]] = []
        self._decoder = msgspec.json.Decoder(Envelope)
        self._encoder = msgspec.json.Encoder()
        self._result_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}
        self._send_lock = anyio.Lock()
        self._tg: TaskGroup | None = None
        self.counters = RpcCounters()
        self.closed = False
        self.ended = anyio.Event()  # set once the connection ended and pending requests failed
        self.last_frame_at = time.monotonic()
        self.last_frame_valid = True
        self.validity_listener: Callable[[bool], None] | None = None
        # Builds the error pending requests get when the connection ends (the
        # supervisor makes it say how the process exited).
        self.closed_error: Callable[[str], BridgeError] = closed_error

    # --- wiring ---------------------------------------------------------

    def add_notification_listener(self, listener: NotificationListener) -> None:
        """``listener(batch)`` gets every batch of notifications, in order; it must not block."""
        self._listeners.append(listener)

    def remove_notification_listener(self, listener: NotificationListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def add_fault_listener(self, listener: FaultListener) -> None:
        self._fault_listeners.append(listener)

    def add_backpressure(self, wait_for_room: Callable[[], Awaitable[None]]) -> None:
        """Await ``wait_for_room()`` after each notification batch: a slow consumer slows the reading
        (and so, through the pipe, codex), instead of letting a queue grow without bound."""
        self._backpressure.append(wait_for_room)

    def add_tap(self, tap: Tap) -> None:
        """``tap(direction, raw)`` sees every frame's bytes ("in" read, "out" sent); it must not block."""
        self._taps.append(tap)

    def set_request_handler(self, method: str, handler: RequestHandler | None) -> None:
        """Route server→client requests ``method`` to ``handler`` (it answers via :meth:`respond`)."""
        if handler is None:
            self._handlers.pop(method, None)
        else:
            self._handlers[method] = handler

    @property
    def pending_count(self) -> int:
        return len(self._pending)

    # --- reading --------------------------------------------------------

    async def run(self) -> None:
        """Read and dispatch until the connection ends, then fail what is pending."""
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                await self._read_loop()
                tg.cancel_scope.cancel()
        finally:
            self._tg = None
            self._close()

    async def _read_loop(self) -> None:
        decode = self._decoder.decode
        pending = self._pending
        counters = self.counters
        known = KNOWN_NOTIFICATIONS
        unknown = counters.unknown_notifications
        while True:
            try:
                frames = await self._transport.receive_batch()
            except anyio.EndOfStream:
                return
            notes: list[Envelope] = []
            valid = self.last_frame_valid
            if self._taps:
                self._tap_batch(frames)
            counters.frames += len(frames)
            for raw in frames:
                if type(raw) is Oversized:
                    counters.oversized_frames += 1
                    valid = False
                    self._fault("oversized", f"frame of {raw.size} bytes exceeds the frame limit", b"", raw.size)
                    continue
                assert isinstance(raw, bytes)
                try:
                    env = decode(raw)
                except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                    valid = False
                    self._fault("parse_error", str(exc), raw, len(raw))
                    continue
                env.line = raw
                method = env.method
                if method is None:
                    rid = env.id
                    if rid is None or rid is msgspec.UNSET:
                        valid = False
                        self._fault("protocol_violation", "a response without an id", raw, len(raw))
                        continue
                    valid = True
                    slot = pending.pop(rid, None)
                    if slot is None:
                        counters.late_responses += 1
                        continue
                    if env.error is not None:
                        slot.error = codex_error(slot.method, env.error)
                    else:
                        slot.result = env.result if len(env.result) else msgspec.Raw(b"null")
                    slot.done.set()
                    continue
                valid = True
                if env.id is msgspec.UNSET:
                    notes.append(env)
                    if method not in known:
                        unknown[method] = unknown.get(method, 0) + 1
                else:
                    self._server_request(env)
            self.last_frame_at = time.monotonic()
            if valid is not self.last_frame_valid:
                self.last_frame_valid = valid
                if self.validity_listener is not None:
                    self.validity_listener(valid)
            if notes:
                counters.notifications += len(notes)
                for listener in self._listeners:
                    try:
                        listener(notes)
                    except Exception:
                        log.exception("notification listener failed")
                for wait_for_room in self._backpressure:  # a consumer that fell behind slows the reading
                    await wait_for_room()

    def _tap_batch(self, frames: list[Any]) -> None:
        for tap in self._taps:
            try:
                for raw in frames:
                    if type(raw) is bytes:
                        tap("in", raw)
            except Exception:
                log.exception("frame tap failed")

    def _fault(self, kind: str, reason: str, raw: bytes, size: int) -> None:
        self.counters.protocol_errors += 1
        fault = ProtocolFault(kind, redact_text(reason)[:PREVIEW_CHARS], preview(raw), size)
        for listener in self._fault_listeners:
            try:
                listener(fault)
            except Exception:
                log.exception("fault listener failed")

    def _server_request(self, env: Envelope) -> None:
        self.counters.server_requests += 1
        handler = self._handlers.get(env.method or "")
        if handler is not None:
            try:
                handler(env)
                return
            except Exception:
                log.exception("server request handler for %s failed", env.method)
        self.counters.server_requests_unhandled += 1
        if self.observer:
            return  # the user's own client answers; an observer stays silent
        if self._tg is not None:
            request_id = env.id if isinstance(env.id, (int, str)) else None
            self._tg.start_soon(
                self._answer_quietly,
                request_id,
                RpcErrorObject(METHOD_NOT_FOUND, f"capture-bridge does not handle {env.method}"),
            )

    async def _answer_quietly(self, request_id: int | str | None, error: RpcErrorObject) -> None:
        with contextlib.suppress(BridgeError):
            await self._send(OutError(request_id, error))

    def _close(self) -> None:
        if self.closed:
            return
        self.closed = True
        pending, self._pending = self._pending, {}
        for slot in pending.values():
            slot.error = self.closed_error(slot.method)
            slot.done.set()
        self.ended.set()

    # --- sending --------------------------------------------------------

    async def _send(self, message: Any) -> None:
        frame = self._encoder.encode(message)
        for tap in self._taps:
            try:
                tap("out", frame)
            except Exception:
                log.exception("frame tap failed")
        async with self._send_lock:
            try:
                await self._transport.send(frame)
            except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
                raise self.closed_error(getattr(message, "method", None) or "a reply") from exc

    async def notify(self, method: str, params: Any = msgspec.UNSET) -> None:
        if self.closed:
            raise self.closed_error(method)
        await self._send(OutNotification(method, params))

    def _refuse_answer(self) -> None:
        if self.observer:
            raise BridgeError(
                errors.NOT_ALLOWED,
                "The bridge is attached to the user's codex daemon as an observer: "
                "server requests are answered by the user's own client.",
            )

    async def respond(self, request_id: int | str | None, result: Any) -> None:
        """Answer a server→client request (refused -32017 for an observer)."""
        self._refuse_answer()
        await self._send(OutResult(request_id, result))

    async def respond_error(self, request_id: int | str | None, code: int, message: str, data: Any = None) -> None:
        self._refuse_answer()
        await self._send(OutError(request_id, RpcErrorObject(code, message, data)))

    async def request_raw(
        self, method: str, params: Any = msgspec.UNSET, *, timeout: float | None = None
    ) -> msgspec.Raw:
        """Send ``method`` and wait for its result, undecoded.

        Raises -32001 when 256 requests are already waiting, -32014 on timeout,
        -32016 when codex answers with an error.
        """
        if self.closed:
            raise self.closed_error(method)
        if len(self._pending) >= self._max_pending:
            raise BridgeError(
                errors.OVERLOADED,
                f"{len(self._pending)} requests to codex app-server are already waiting; retry later.",
            )
        request_id = self._next_id
        self._next_id += 1
        slot = _Pending(method)
        self._pending[request_id] = slot
        wait = self.request_timeout if timeout is None else timeout
        try:
            await self._send(OutRequest(method, request_id, params))
            self.counters.requests_sent += 1
            with anyio.move_on_after(wait):
                await slot.done.wait()
        finally:
            self._pending.pop(request_id, None)
        if not slot.done.is_set():
            self.counters.timeouts += 1
            raise BridgeError(
                errors.TIMEOUT,
                f"codex app-server did not answer {method} within {wait:g} s (codex.requestTimeoutMs); "
                "check get_codex_app_server_status.",
                method=method,
                timeoutMs=int(wait * 1000),
            )
        if slot.error is not None:
            raise slot.error
        assert slot.result is not None
        return slot.result

    async def request(self, method: str, params: Any, result_type: type[T], *, timeout: float | None = None) -> T:
        """:meth:`request_raw`, decoded into ``result_type``."""
        raw = await self.request_raw(method, params, timeout=timeout)
        decoder = self._result_decoders.get(result_type)
        if decoder is None:
            decoder = self._result_decoders[result_type] = msgspec.json.Decoder(result_type)
        try:
            result: T = decoder.decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise BridgeError(
                errors.SIDECAR_ERROR,
                f"codex app-server answered {method} with an unexpected result: {redact_text(str(exc))}",
                codexError=None,
            ) from exc
        return result

    async def aclose(self) -> None:
        """Close the sending side; the reader ends when the peer closes its side."""
        await self._transport.aclose()
