"""The decoder process's side of the hand-off: it serves the connections the bridge accepted.

The bridge accepts each receiver connection and passes its descriptor here
(:class:`~bridge.receiver.decoder_wire.Handed` on the SOCK_SEQPACKET channel), with
the :class:`~bridge.receiver.decoder_wire.Rules` the checks need. This process then
reads, decodes, stores and answers every request on it with the same steps as the
bridge (:mod:`bridge.receiver.intake`, :mod:`bridge.receiver.http`), and sends the
bridge one :class:`~bridge.receiver.decoder_wire.Outcome` a request. A flood's HTTP
work (parsing, the socket round trips that wake the sender) runs here, at the
decoder's lower CPU priority, instead of on the event loop that carries the stream's
live events.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable

import anyio
import msgspec
from anyio.abc import SocketStream, TaskGroup

from bridge.receiver import http
from bridge.receiver.decode import Rejected
from bridge.receiver.decoder_wire import Failed, Handed, Ingested, Job, Outcome, Refused, Rules, ToHandler, frame
from bridge.receiver.intake import DecoderFailed, Intake
from bridge.redact import register_secret

MAX_MESSAGE = 1 << 16  # a Rules or a Handed message is far smaller


class HandedConnections:
    """Takes connections and rules off the channel, serves them, reports each request's outcome."""

    def __init__(
        self, handle: Callable[[Job], Ingested | Refused | Failed], handed: socket.socket, served: socket.socket
    ) -> None:
        """``handle``: the process's decode-and-store of one job (``decoder_main.Decoder.handle``)."""
        handed.setblocking(False)
        served.setblocking(False)
        self._handle_job = handle
        self._handed = handed
        self._served = served
        self._rules: Rules | None = None
        self._intake = Intake()
        self._server: http.Server | None = None
        self._tg: TaskGroup | None = None
        self._sending = anyio.Lock()
        self._read = msgspec.msgpack.Decoder(ToHandler)

    async def run(self) -> None:
        """Serve until the bridge closes the channel (or the caller cancels)."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            while True:
                await anyio.wait_readable(self._handed)
                if not self._take_messages():
                    break
            tg.cancel_scope.cancel()

    def _take_messages(self) -> bool:
        """Apply what waits on the channel, without waiting; False once the bridge has closed it."""
        while True:
            try:
                data, fds, _flags, _address = socket.recv_fds(self._handed, MAX_MESSAGE, 4)
            except (BlockingIOError, InterruptedError):
                return True
            if not data:
                _close(fds)
                return False
            message = self._read.decode(data)
            if isinstance(message, Rules):
                _close(fds)
                self._apply(message)
            elif isinstance(message, Handed) and fds and self._tg is not None and self._server is not None:
                _close(fds[1:])
                self._tg.start_soon(self._serve, socket.socket(fileno=fds[0]), message.peer)
            else:
                _close(fds)

    def _apply(self, rules: Rules) -> None:
        for secret in rules.secrets:
            register_secret(secret)
        self._rules = rules
        if self._server is None:
            limits = http.Limits(*rules.http_limits) if rules.http_limits else http.Limits()  # type: ignore[arg-type]
            self._server = http.Server(self._handle, limits)

    async def _serve(self, sock: socket.socket, peer: str) -> None:
        assert self._server is not None
        try:
            stream = await SocketStream.from_socket(sock)
        except OSError:
            sock.close()
            return
        await self._server.serve_stream(stream, peer)

    async def _handle(self, request: http.Request, body: http.Body) -> http.Response:
        self._take_messages()  # rules the bridge sent before this request arrived apply to it
        assert self._rules is not None  # the bridge sends its rules before the first connection
        response, outcome = await self._intake.answer(request, body, self._rules, self._ingest)
        await self._report(outcome)
        return response

    async def _ingest(self, job: Job) -> Ingested:
        # On the loop itself: a thread would only trade the GIL back and forth with it (this process has
        # nothing else to do meanwhile; other connections' bytes wait in their sockets for a few ms).
        answer = self._handle_job(job)
        if isinstance(answer, Ingested):
            return answer
        if isinstance(answer, Refused):
            raise Rejected(answer.status, answer.reason)
        raise DecoderFailed(answer.error)

    async def _report(self, outcome: Outcome) -> None:
        data = memoryview(frame(outcome))
        async with self._sending:  # whole frames, one at a time
            while data:
                try:
                    sent = self._served.send(data)
                except (BlockingIOError, InterruptedError):
                    await anyio.wait_writable(self._served)
                    continue
                data = data[sent:]


def _close(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)
