"""The host session: pygls's ``JsonRPCProtocol`` dispatching the commands, our transport around it.

pygls reads only Content-Length frames, so the bytes stay ours (``transport.py``
and ``framing.py``); what pygls does is the session: it runs each command's
handler as a request future keyed by its id, handles ``$/cancelRequest``, and
answers through ``_send_response``. That method is where the answer comes back
to us as a value (never as JSON): the dispatcher encodes it once with msgspec.

Each handler runs with its :class:`~bridge.host.request.Request` in a context
variable (pygls copies the context into the handler's task): ``$/cancelRequest``
sets its flag, and progress goes to the host through it.

This module imports pygls and lsprotocol (about a second on a slow machine), so
it is loaded in the worker thread that ``serve`` starts, never before
``bridge_info`` is answered.

pygls structures and unstructures messages only on its own reading and writing
path, which the bridge does not use (the frames are ours, answers come back as
values), so the session gets a bare cattrs converter: lsprotocol's (its hooks
take ~17 ms to register, before the first status) is built on the first
``$/progress``, which sends lsprotocol values.
"""

from __future__ import annotations

import functools
import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import cattrs
from lsprotocol.types import CANCEL_REQUEST, CancelParams
from pygls.protocol import JsonRPCNotification, JsonRPCProtocol, JsonRPCRequestMessage
from pygls.server import JsonRPCServer

from bridge import errors
from bridge.errors import BridgeError
from bridge.host.request import CURRENT, Request, cancelled_error

log = logging.getLogger("bridge.host")

Outcome = tuple[Any, BridgeError | None]  # (result, error): errors are values


class HostSession(JsonRPCProtocol):
    """pygls's protocol with its answers handed to the dispatcher as values."""

    def __init__(self, server: JsonRPCServer, converter: Any) -> None:
        super().__init__(server, converter)
        self._send_bytes: Callable[[bytes], None] | None = None
        self._waiting: dict[int, Callable[[Outcome], None]] = {}
        self._requests: dict[int, Request] = {}  # internal id -> the running request
        self._running: dict[Any, int] = {}  # host id -> internal id (ids may repeat in a batch: the last wins)
        self._host_ids: dict[int, Any] = {}
        self._ids = itertools.count(1)

    @classmethod
    def create(cls, send: Callable[[bytes], None]) -> HostSession:
        session = JsonRPCServer(cls, cattrs.Converter).protocol
        assert isinstance(session, HostSession)
        session._send_bytes = send
        return session

    def register(self, name: str, handler: Callable[[Any], Awaitable[Any]]) -> None:
        self.fm.feature(name)(handler)

    def submit(
        self, method: str, host_id: Any, params: Any, token: int | str | None, done: Callable[[Outcome], None]
    ) -> None:
        """Start the handler now with the decoded ``params``; ``done`` gets ``(result, error)``."""
        internal = next(self._ids)
        request = Request(method, token, self._send_bytes, unstructure_lsp)
        self._waiting[internal] = done
        self._requests[internal] = request
        self._running[host_id] = internal
        self._host_ids[internal] = host_id
        reset = CURRENT.set(request)
        try:  # pygls copies the context into the handler's task: the handler sees ``request``
            self.handle_message(JsonRPCRequestMessage(id=internal, method=method, jsonrpc="2.0", params=params))
        finally:
            CURRENT.reset(reset)

    def notify_handler(self, method: str, params: Any) -> None:
        """A command sent as a notification: run it, answer nothing."""
        reset = CURRENT.set(Request(method))
        try:
            self.handle_message(JsonRPCNotification(method=method, jsonrpc="2.0", params=params))
        finally:
            CURRENT.reset(reset)

    def cancel(self, host_id: Any) -> None:
        """``$/cancelRequest {id}`` from the host, handed to pygls as the notification it is."""
        self.handle_message(JsonRPCNotification(method=CANCEL_REQUEST, jsonrpc="2.0", params=CancelParams(id=host_id)))

    def _handle_cancel_notification(self, msg_id: Any) -> None:
        """pygls's cancel handler, for our ids: flag the running request; an unknown or finished id is ignored.

        The flag is all (pygls would cancel the handler's future, which can cut
        a command in the middle of a write): a command stops at its own safe
        points, so a cancelled command leaves nothing half done.
        """
        internal = self._running.get(msg_id)
        request = self._requests.get(internal) if internal is not None else None
        if request is None:
            log.debug("$/cancelRequest for %r: not running (finished or unknown); ignored", msg_id)
            return
        request.cancel()

    # pygls answers here (on the loop thread); the value goes to the dispatcher, which encodes it once.
    def _send_response(self, msg_id: Any, result: Any | None = None, error: Any | None = None) -> None:
        done = self._waiting.pop(msg_id, None)
        request = self._requests.pop(msg_id, None)
        host_id = self._host_ids.pop(msg_id, None)
        if self._running.get(host_id) == msg_id:
            del self._running[host_id]
        if done is None:
            return
        if error is not None:
            done((None, _bridge_error(error, request.method if request else "the request")))
        elif isinstance(result, BridgeError):
            done((None, result))
        else:
            done((result, None))


@functools.cache
def _lsp_converter() -> cattrs.Converter:
    from lsprotocol.converters import get_converter  # what pygls's default converter is built on

    return get_converter()


def unstructure_lsp(value: Any) -> Any:
    """An lsprotocol value (``WorkDoneProgress*``) as the plain data LSP sends (None fields left out)."""
    return _lsp_converter().unstructure(value)


def _bridge_error(error: Any, method: str) -> BridgeError:
    code = getattr(error, "code", errors.INTERNAL_ERROR)
    if code == errors.REQUEST_CANCELLED:
        return cancelled_error(method)
    message = getattr(error, "message", None) or "Internal error; the bridge log (stderr) has the details."
    return BridgeError(int(code), str(message))
