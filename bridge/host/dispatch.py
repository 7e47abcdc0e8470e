"""From frames to answers: JSON-RPC validation in front of the pygls session.

The session (``session.py``: pygls's ``JsonRPCProtocol``) runs the handlers,
but it only understands well-formed single requests. So each message is
checked and normalised here first: batches are split and their answers
re-assembled in order, missing ``params`` become ``{}``, and params are
decoded with msgspec into the command's type; the handler gets that Struct.
The session answers with a value (result or error), encoded here once.
``$/cancelRequest`` goes to the session at once (docs/protocol.md §1.1).
Errors are values all the way: a bad message gets a JSON-RPC error naming
the problem and the connection keeps serving.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import msgspec
from anyio.abc import TaskGroup

from bridge import errors
from bridge.config.validate import ConfigError, convert_strict
from bridge.errors import BridgeError
from bridge.host.app import App
from bridge.host.decode import Response, decode_frame, error_response, valid_id
from bridge.host.registry import REGISTRY, Command, Forwarded, PassthroughParams
from bridge.store.health import storage_error

log = logging.getLogger("bridge.host")

_json_encode = msgspec.json.Encoder().encode

# Commands answered before the subsystems are up (the host calls bridge_info first).
EARLY = frozenset({"bridge_info", "shutdown"})
CANCEL_REQUEST = "$/cancelRequest"  # LSP's cancellation notification (docs/protocol.md §1.1)
# Frames being handled at once; past it the transport stops taking frames until half are answered
# (otherwise a host that writes faster than the bridge answers grows the bridge without bound).
MAX_INFLIGHT = 1024

# Whether the request handled by the current task has reached its handler (for the shutdown error).
_STARTED: contextvars.ContextVar[bool] = contextvars.ContextVar("started", default=False)


def _bad_request(reason: str) -> BridgeError:
    return BridgeError(errors.INVALID_REQUEST, f"Invalid request: {reason}.")


class PyglsBridge:
    """Holds the pygls session once it is loaded; importing pygls is deferred to a thread."""

    def __init__(self) -> None:
        self.session: Any = None  # bridge.host.session.HostSession
        self.ready = threading.Event()

    def load(
        self, send: Callable[[bytes], None], commands: dict[str, Command], make_handler: Callable[[Command], Any]
    ) -> None:
        """Build the session and register every command as a pygls feature (runs in a thread)."""
        from bridge.host.session import HostSession

        logging.getLogger("pygls").setLevel(logging.CRITICAL)  # our own log says what matters
        session = HostSession.create(send)
        for name, cmd in commands.items():
            session.register(name, make_handler(cmd))
        self.session = session
        self.ready.set()


class Dispatcher:
    def __init__(self, app: App, send: Callable[[bytes], None], on_shutdown: Callable[[], None]) -> None:
        self.app = app
        self._send = send
        self._on_shutdown = on_shutdown
        self.ready = anyio.Event()  # subsystems up
        self.pygls = PyglsBridge()
        self.pygls_loaded = anyio.Event()
        self.commands_loaded = anyio.Event()  # every command module imported (the registry is complete)
        self.tg: TaskGroup | None = None
        # Fair: commands start in the order they arrived. Uncontended, taking it costs no trip round the loop.
        self._admission = anyio.Lock(fast_acquire=True)
        self._inflight = 0
        self._idle = anyio.Event()
        self._idle.set()
        self._room = anyio.Event()  # set when fewer than MAX_INFLIGHT frames are being handled
        self._room.set()
        self.abandoned = False  # shutting down: what is still unanswered gets SHUTTING_DOWN
        self._scopes: set[anyio.CancelScope] = set()

    # -- set-up ---------------------------------------------------------------------------
    async def load_pygls(self) -> None:
        await anyio.to_thread.run_sync(
            self.pygls.load, self._send, REGISTRY, self._make_handler, abandon_on_cancel=True
        )
        self.pygls_loaded.set()

    async def drain(self) -> None:
        """Wait until every request received so far has been answered."""
        await self._idle.wait()

    async def abandon(self, timeout: float = 0.3) -> None:
        """Stop waiting for what is still unanswered: each such request is answered SHUTTING_DOWN.

        Later frames get the same answer at once. Never silence: a host that
        sent a request before EOF or ``shutdown`` always hears back.
        """
        self.abandoned = True
        for scope in list(self._scopes):
            scope.cancel()
        with anyio.move_on_after(timeout):
            await self.drain()

    def has_room(self) -> bool:
        return self._room.is_set()

    async def room(self) -> None:
        """Wait until another frame may be taken (fewer than ``MAX_INFLIGHT`` in hand)."""
        await self._room.wait()

    def _begin(self) -> None:
        self._inflight += 1
        if self._idle.is_set():
            self._idle = anyio.Event()
        if self._inflight >= MAX_INFLIGHT and self._room.is_set():
            self._room = anyio.Event()

    def _end(self) -> None:
        self._inflight -= 1
        if self._inflight == 0:
            self._idle.set()
        if self._inflight <= MAX_INFLIGHT // 2:
            self._room.set()

    def _make_handler(self, cmd: Command) -> Callable[[Any], Awaitable[Any]]:
        app = self.app

        async def handler(params: Any) -> Any:
            try:
                return await invoke(app, cmd, params)
            except BridgeError as exc:
                return exc  # an error is a value: the session hands it to us as the answer

        return handler

    # -- frames in --------------------------------------------------------------------------
    def handle_frame(self, body: bytes) -> None:
        """Decode one frame and start its handling; a frame that is not a request is answered here."""
        message, problem = decode_frame(body)
        if problem is not None:
            self.answer(problem)
            return
        assert self.tg is not None
        if isinstance(message, list):
            if not message:
                self.answer(error_response(None, _bad_request("an empty batch")))
                return
            self._begin()
            self.tg.start_soon(self._batch, message)
        else:
            self._begin()
            self.tg.start_soon(self._single, message)

    def answer(self, payload: Response | list[Response]) -> None:
        self._send(_json_encode(payload))

    async def _guarded(self, message: Any) -> Response | None:
        """``process`` under a cancel scope that :meth:`abandon` uses; nothing raised escapes."""
        if self.abandoned:
            return _shutting_down(message, started=False)
        scope = anyio.CancelScope()
        self._scopes.add(scope)
        _STARTED.set(False)
        try:
            with scope:
                return await self.process(message)
            return _shutting_down(message, started=_STARTED.get())
        except Exception:
            log.exception("internal error while handling a frame")
            return _internal(message)
        finally:
            self._scopes.discard(scope)

    async def _single(self, message: Any) -> None:
        try:
            response = await self._guarded(message)
            if response is not None:
                self.answer(response)
                if isinstance(message, dict) and message.get("method") == "shutdown" and "error" not in response:
                    self._on_shutdown()
        finally:
            self._end()

    async def _batch(self, messages: list[Any]) -> None:
        try:
            await self._run_batch(messages)
        finally:
            self._end()

    async def _run_batch(self, messages: list[Any]) -> None:
        results: list[Response | None] = [None] * len(messages)

        async def one(index: int, message: Any) -> None:
            results[index] = await self._guarded(message)

        async with anyio.create_task_group() as tg:
            for index, message in enumerate(messages):
                tg.start_soon(one, index, message)
        answers = [r for r in results if r is not None]
        if answers:
            self.answer(answers)
        if any(isinstance(m, dict) and m.get("method") == "shutdown" and "id" in m for m in messages):
            self._on_shutdown()

    async def process(self, message: Any) -> Response | None:
        """Validate one message and run it; the answer, or None for a notification."""
        if not isinstance(message, dict):
            return error_response(None, _bad_request("a message must be a JSON object (or a batch of them)"))
        has_id = "id" in message
        msg_id = message.get("id")
        if not valid_id(msg_id):
            return error_response(None, _bad_request("'id' must be a string, an integer or null"))
        method = message.get("method")
        if method is None and ("result" in message or "error" in message):
            log.warning("ignoring a response from the host", extra={"id": msg_id})
            return None
        if not isinstance(method, str) or not method:
            return error_response(msg_id, _bad_request("'method' is missing or not a string"))
        version = message.get("jsonrpc", "2.0")
        if version != "2.0":
            return error_response(msg_id, _bad_request(f"'jsonrpc' must be \"2.0\", not {version!r}"))
        params = message.get("params", {})
        if params is None:
            params = {}
        if not isinstance(params, dict):
            err = BridgeError(
                errors.INVALID_PARAMS,
                f"Invalid params for {method}: params must be an object of named params.",
                field="params",
            )
            return error_response(msg_id, err) if has_id else None
        if method == CANCEL_REQUEST:  # handled at once, before anything else is awaited
            self.cancel(params)
            return {"jsonrpc": "2.0", "id": msg_id, "result": None} if has_id else None
        cmd = REGISTRY.get(method)
        if cmd is None and not self.commands_loaded.is_set():
            await self.commands_loaded.wait()  # still importing in the background
            cmd = REGISTRY.get(method)
        if cmd is None:
            if not has_id:
                log.warning("ignoring notification for unknown method %s", method)
                return None
            return error_response(
                msg_id,
                BridgeError(errors.METHOD_NOT_FOUND, f"Method not found: {method}. bridge_info lists the commands."),
            )
        started = time.perf_counter()
        response = await self._run(cmd, msg_id, has_id, params)
        log.debug("handled %s in %.1f ms", method, (time.perf_counter() - started) * 1000)
        return response

    async def _run(self, cmd: Command, msg_id: Any, has_id: bool, params: dict[str, Any]) -> Response | None:
        try:  # our validation in front of pygls: the handler gets the decoded Struct
            decoded = decode_params(cmd, params)
        except BridgeError as exc:
            return error_response(msg_id, exc) if has_id else None
        async with self._admission:
            if cmd.name in EARLY and not self.pygls.ready.is_set():
                # Answer before pygls has finished importing (the first answer after spawn).
                return await self._direct(cmd, msg_id, has_id, decoded)
            # Each wait on a set anyio Event still goes once round the event loop: while the stream is
            # busy a round costs a share of its work, so the settled bridge skips them (the command's
            # latency is a handful of rounds: docs/performance.md).
            if cmd.name not in EARLY and not self.ready.is_set():
                await self.ready.wait()
            if not self.pygls_loaded.is_set():
                await self.pygls_loaded.wait()
            _STARTED.set(True)
            session = self.pygls.session
            if not has_id:
                session.notify_handler(cmd.name, decoded)
                return None
            future: asyncio.Future[tuple[Any, BridgeError | None]] = asyncio.get_running_loop().create_future()
            token = getattr(decoded.known if isinstance(decoded, Forwarded) else decoded, "work_done_token", None)
            session.submit(cmd.name, msg_id, decoded, token, lambda outcome: _resolve(future, outcome))
        result, error = await future
        if error is not None:
            return error_response(msg_id, error)
        return {"jsonrpc": "2.0", "id": msg_id, "result": result}

    def cancel(self, params: Any) -> None:
        """``$/cancelRequest {id}``: the running request with that id stops at its next safe point."""
        target = params.get("id") if isinstance(params, dict) else None
        if not valid_id(target) or target is None:
            log.warning("ignoring $/cancelRequest without a valid id")
            return
        if self.pygls.session is not None:
            self.pygls.session.cancel(target)

    async def _direct(self, cmd: Command, msg_id: Any, has_id: bool, params: Any) -> Response | None:
        _STARTED.set(True)
        try:
            result = await invoke(self.app, cmd, params)
        except BridgeError as exc:
            return error_response(msg_id, exc) if has_id else None
        return {"jsonrpc": "2.0", "id": msg_id, "result": result} if has_id else None


def _resolve(future: asyncio.Future[tuple[Any, BridgeError | None]], outcome: tuple[Any, BridgeError | None]) -> None:
    """The session's answer, its result encoded now (once: the frame embeds the bytes as they are).

    A result that is already ``msgspec.Raw`` (codex's answer passed through) is embedded as it is.
    """
    if future.done():
        return
    result, error = outcome
    if error is None and not isinstance(result, msgspec.Raw):  # codex's bytes, passed on: already JSON
        try:
            result = msgspec.Raw(_json_encode(result))
        except Exception:
            log.exception("a command's result could not be encoded")
            result, error = None, BridgeError(
                errors.INTERNAL_ERROR, "Internal error while encoding the answer; the bridge log has the details."
            )
    future.set_result((result, error))


def _request_id(message: Any) -> tuple[bool, Any]:
    """(whether an answer is due, the id to answer with) for a message of unknown shape."""
    if not isinstance(message, dict):
        return True, None
    if "id" not in message:
        return not isinstance(message.get("method"), str), None  # a notification gets nothing
    if "method" not in message and ("result" in message or "error" in message):
        return False, None  # a response from the host
    msg_id = message["id"]
    return True, msg_id if valid_id(msg_id) else None


def _shutting_down(message: Any, *, started: bool) -> Response | None:
    due, msg_id = _request_id(message)
    if not due:
        return None
    method = message.get("method") if isinstance(message, dict) else None
    what = f"{method}" if isinstance(method, str) else "this request"
    if started:
        text = f"The bridge is shutting down and stopped {what} before it finished; it may have taken effect."
    else:
        text = f"The bridge is shutting down before it could run {what}; it was not run."
    return error_response(msg_id, BridgeError(errors.SHUTTING_DOWN, text, started=started))


def _internal(message: Any) -> Response | None:
    due, msg_id = _request_id(message)
    if not due:
        return None
    err = BridgeError(
        errors.INTERNAL_ERROR, "Internal error while handling this frame; the bridge log has the details."
    )
    return error_response(msg_id, err)


def decode_params(cmd: Command, params: dict[str, Any]) -> Any:
    try:
        known = convert_strict(params, cmd.params)
    except ConfigError as exc:
        raise errors.invalid_params(cmd.name, exc.field, exc.problem) from None
    if isinstance(known, PassthroughParams):
        return Forwarded(known, params)
    return known


async def invoke(app: App, cmd: Command, decoded: Any) -> Any:
    """Run the handler on decoded params; the result is encoded once, with the answer. Internal errors never leak."""
    try:
        result = await cmd.handler(app, decoded)
    except BridgeError:
        raise
    except Exception as exc:
        storage = storage_error(exc, str(app.data_dir.root))  # a full disk or a broken store is -32040, never -32603
        if storage is not None:
            log.warning("%s failed on the storage: %s", cmd.name, storage.message)
            raise storage from None
        log.exception("internal error in %s", cmd.name)
        raise BridgeError(
            errors.INTERNAL_ERROR,
            f"Internal error while handling {cmd.name}; the bridge log (stderr) has the details.",
        ) from None
    return result
