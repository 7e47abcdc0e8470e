"""Running the project's local fakes (model APIs): in a background thread, or as a command."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, Protocol, TypeVar

import anyio
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
