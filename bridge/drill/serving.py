"""Running the project's local fakes (model APIs): in a background thread, or as a command."""

from __future__ import annotations

import abc
import argparse
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, Protocol, TypeVar

import anyio
import anyio.abc
import h11
from anyio.abc import TaskStatus
from anyio.from_thread import start_blocking_portal


class Servable(Protocol):
    async def serve(self, *, task_status: TaskStatus[int] = ...) -> None: ...


S = TypeVar("S", bound=Servable)


@contextmanager
def running_in_thread(fake: S) -> Iterator[S]:
    """``fake`` serving on its own anyio loop in a background thread until the block ends."""
    with start_blocking_portal() as portal:
        future, _port = portal.start_task(fake.serve)
        try:
            yield fake
        finally:
            future.cancel()


def serve_command(prog: str, description: str, make: Callable[[int], Any], argv: list[str] | None) -> int:
    """``python -m …`` entry point: serve on 127.0.0.1 (``--port``, 0 = any) and print the port."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free port)")
    args = parser.parse_args(argv)

    async def run() -> None:
        fake = make(args.port)
        async with anyio.create_task_group() as tg:
            port = await tg.start(fake.serve)
            print(port, flush=True)

    with suppress(KeyboardInterrupt):
        anyio.run(run)
    return 0


class LoopbackHttpServer(abc.ABC):
    """An HTTP/1.1 server on 127.0.0.1 (h11 over anyio): subclasses answer each request.

    The project's fakes of the model APIs are built on it; it only ever binds loopback.
    """

    def __init__(self, port: int = 0) -> None:
        self.port = port

    async def serve(self, *, task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED) -> None:
        """Listen until cancelled; reports the bound port through ``task_status``."""
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=self.port)
        async with listener:
            self.port = listener.listeners[0].extra(anyio.abc.SocketAttribute.local_port)
            task_status.started(self.port)
            await listener.serve(self._connection)

    async def _connection(self, stream: anyio.abc.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER)
        async with stream:
            try:
                while await self._one_exchange(conn, stream):
                    conn.start_next_cycle()
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, h11.ProtocolError):
                return

    async def _one_exchange(self, conn: h11.Connection, stream: anyio.abc.SocketStream) -> bool:
        request: h11.Request | None = None
        body = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await stream.receive(65536))
            elif isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
            else:  # ConnectionClosed or PAUSED: nothing more on this connection
                return False
        assert request is not None
        await self._answer(conn, stream, request, bytes(body))
        return conn.our_state is h11.DONE and conn.their_state is h11.DONE

    @abc.abstractmethod
    async def _answer(
        self, conn: h11.Connection, stream: anyio.abc.SocketStream, request: h11.Request, raw: bytes
    ) -> None:
        """Answer one request (every fake in its own way)."""
