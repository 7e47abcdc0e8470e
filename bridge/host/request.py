"""The request a host command is answering: its cancellation flag and its work-done progress.

Cancellation (docs/protocol.md §1.1): ``$/cancelRequest`` sets the flag of the
running request; a command polls :meth:`Request.cancelled` (or calls
:meth:`Request.check`) at its safe points and answers -32800 with nothing half
done. Progress: when the params carried a ``workDoneToken``,
:meth:`Request.begin` / ``report`` / ``end`` send ``$/progress`` notifications
whose values are lsprotocol's ``WorkDoneProgressBegin/Report/End``.

Light on purpose: the command modules import it before pygls is loaded;
lsprotocol is imported only when progress is sent (by then it is loaded).
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from typing import Any

import msgspec

from bridge import errors
from bridge.errors import BridgeError

_encode = msgspec.json.Encoder().encode


class Request(msgspec.Struct):
    """What a running command can ask of its session: was it cancelled, and where to report progress."""

    method: str
    token: int | str | None = None  # the host's workDoneToken
    send: Callable[[bytes], None] | None = None
    unstructure: Callable[[Any], Any] | None = None  # lsprotocol values to plain data (the session's converter)
    _cancelled: threading.Event = msgspec.field(default_factory=threading.Event)

    def cancel(self) -> None:
        self._cancelled.set()

    def cancelled(self) -> bool:
        """Thread-safe: a worker thread asks this between steps."""
        return self._cancelled.is_set()

    def check(self) -> None:
        """Raise the -32800 answer when the host cancelled this request."""
        if self.cancelled():
            raise cancelled_error(self.method)

    def _progress(self, value: Any) -> None:
        if self.token is None or self.send is None or self.unstructure is None:
            return
        params = {"token": self.token, "value": self.unstructure(value)}
        self.send(_encode({"jsonrpc": "2.0", "method": "$/progress", "params": params}))

    def begin(self, title: str, message: str | None = None, *, cancellable: bool = True) -> None:
        if self.token is None:
            return
        from lsprotocol.types import WorkDoneProgressBegin

        self._progress(WorkDoneProgressBegin(title=title, message=message, percentage=0, cancellable=cancellable))

    def report(self, message: str, percentage: int | None = None, *, cancellable: bool | None = None) -> None:
        """``cancellable=False`` once the command is past its last safe point (a cancel no longer stops it)."""
        if self.token is None:
            return
        from lsprotocol.types import WorkDoneProgressReport

        self._progress(WorkDoneProgressReport(message=message, percentage=percentage, cancellable=cancellable))

    def end(self, message: str | None = None) -> None:
        if self.token is None:
            return
        from lsprotocol.types import WorkDoneProgressEnd

        self._progress(WorkDoneProgressEnd(message=message))


CURRENT: contextvars.ContextVar[Request | None] = contextvars.ContextVar("host_request", default=None)


def current() -> Request:
    """The request the running command answers (a detached one outside a session, e.g. in unit tests)."""
    request = CURRENT.get()
    return request if request is not None else Request("")


def cancelled_error(method: str) -> BridgeError:
    return BridgeError(
        errors.REQUEST_CANCELLED, f"{method} was cancelled ($/cancelRequest); nothing it started was left half done."
    )


