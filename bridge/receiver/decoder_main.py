"""The OTLP decoder process: a request's bytes in, its records stored, a small answer out.

The bridge starts it (``bridge.runtime.module_argv``, so a frozen build runs its own
executable) on the first request and stops it when telemetry has been quiet for a while.
It reads :mod:`bridge.receiver.decoder_wire` frames from stdin and writes the answers to
stdout; it ends when stdin does. Per job it runs :func:`bridge.receiver.prepare.prepare`
and stores the rows in the telemetry store (``<dataDir>/telemetry.sqlite3``, its own
connection and checkpoints), then maps the newly stored records to the OTEL baseline's
capture events (:class:`~bridge.receiver.baseline.BaselineFeeder`, which remembers what
each trace revealed and holds records back until their turn is known). The bridge only
receives counts, those events, and a storage fault as a value: a telemetry flood's
records never cross, and their mapping costs the bridge's GIL nothing.

Killing it loses no record: a job it did not answer is answered 503 by the bridge and sent
again by its exporter. What the feeder held back (records waiting for their trace's turn)
goes out when the bridge stops it (:class:`~bridge.receiver.decoder_wire.Expire` with
``everything``); a crash loses that memory, and those records stay in ``otel_records`` only.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
from pathlib import Path
from typing import BinaryIO

import msgspec

from bridge.capture.events import CaptureEvent
from bridge.receiver import decode, sink
from bridge.receiver.baseline import BaselineFeeder
from bridge.receiver.decode import Format, Rejected, Signal
from bridge.receiver.decoder_wire import (
    HEADER_BYTES,
    Expire,
    Failed,
    Hello,
    Ingested,
    Job,
    Placed,
    Ready,
    Refused,
    ToDecoder,
    frame,
    frame_length,
)
from bridge.receiver.prepare import prepare
from bridge.receiver.records import OtelRecord
from bridge.redact import redact_text, register_secret
from bridge.store.db import Database, StorageUnavailable
from bridge.store.health import classify
from bridge.store.schema import TELEMETRY_MIGRATIONS

_ERROR_MAX = 300
NICENESS = 3
AUTOCHECKPOINT_PAGES = 1000  # SQLite's default: 4 MiB of WAL


def _sentence(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {redact_text(str(exc))[:_ERROR_MAX]}"


class Decoder:
    """The process's state: the telemetry store's path, its connection once a job stores, the baseline's memory."""

    def __init__(self) -> None:
        self.store_path: Path | None = None
        self._db: Database | None = None
        self._opening = threading.Lock()  # jobs from stdin and from served connections come from two threads
        self._placed: list[CaptureEvent] = []
        self._feeder = BaselineFeeder(self._placed.extend)
        self._placing = threading.Lock()  # the feeder's memory, for the same two threads

    def hello(self, message: Hello) -> Ready:
        for secret in message.secrets:
            register_secret(secret)
        if message.store is not None:
            self.store_path = Path(message.store)
        decode.warm_up()
        return Ready(os.getpid())

    def _store(self) -> Database:
        with self._opening:
            return self._open_store()

    def _open_store(self) -> Database:
        if self._db is None:
            if self.store_path is None:
                raise RuntimeError("the bridge named no telemetry store")
            self._db = Database(self.store_path, migrations=TELEMETRY_MIGRATIONS)
            # The only writer of its store, and no live event waits on it: the commit that fills the WAL
            # checkpoints it inline, so the next one restarts it. The WAL stays a few MiB and is
            # rewritten in place instead of growing, which keeps the file system's journal (and the
            # bridge's own checkpoints, which wait on it) out of a flood's way.
            self._db.write_connection_pragma(f"wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")
        return self._db

    def handle(self, job: Job) -> Ingested | Refused | Failed:
        """One job's answer: never an exception (a refused body, a storage fault and a failure are values)."""
        try:
            prepared = prepare(
                Signal(job.signal),
                Format(job.fmt),
                job.body,
                gzipped=job.gzipped,
                limit=job.limit,
                received_at_ms=job.received_at_ms,
                storing=job.storing,
            )
        except Rejected as exc:
            return Refused(exc.status, exc.reason)
        except Exception as exc:  # a bug or no memory: the bridge answers 500 and logs this sentence
            return Failed(_sentence(exc))
        done = Ingested(prepared.count, prepared.rejected, prepared.problems)
        if not prepared.rows:
            return done
        try:
            stored = sink.store(self._store(), prepared)
        except Exception as exc:  # opening the store failed
            found = (exc.kind, exc.detail) if isinstance(exc, StorageUnavailable) else classify(exc)
            if found is not None:
                done.fault = found
            else:
                done.error = _sentence(exc)
            return done
        done.stored = stored.new
        if stored.baseline:  # new records (also those a failed request stored before it failed)
            done.events, done.unplaced = self._place(stored.baseline)
        if isinstance(stored.error, StorageUnavailable):
            done.fault = (stored.error.kind, stored.error.detail)
        elif stored.error is not None:
            done.error = _sentence(stored.error)
        return done

    def expire(self, message: Expire) -> Placed:
        """The events of the records the feeder let go (held past their time, or all of them)."""
        events, unplaced = self._place(None, everything=message.everything)
        return Placed(events, unplaced)

    def _place(
        self, records: list[OtelRecord] | None, *, everything: bool = False
    ) -> tuple[list[CaptureEvent], str | None]:
        """Feed new records (or, with None, expire held ones); the events made, and a failure's sentence."""
        with self._placing:
            try:
                if records is None:
                    self._feeder.expire(everything=everything)
                else:
                    self._feeder.feed(records)
            except Exception as exc:  # a bug: the records stay in otel_records, the bridge logs the sentence
                return self._take_placed(), _sentence(exc)
            return self._take_placed(), None

    def _take_placed(self) -> list[CaptureEvent]:
        events = self._placed[:]
        self._placed.clear()  # in place: the feeder's callback is this list's extend
        return events

    def close(self) -> None:
        if self._db is not None:
            self._db.close()


def _read_exactly(stream: BinaryIO, size: int) -> bytes | None:
    """``size`` bytes, or None at the end of the stream (the bridge closed it, or is gone)."""
    data = stream.read(size)
    if len(data) < size:
        return None
    return data


def serve(stdin: BinaryIO, stdout: BinaryIO) -> int:
    """Answer frames until stdin ends; returns the exit code.

    A Hello that names hand-off channels (and a system that passes descriptors) turns on
    the serving of connections (:mod:`bridge.receiver.handed`); the jobs on stdin are then
    answered from a thread beside it.
    """
    state = Decoder()
    try:
        channels = _answer_jobs(stdin, stdout, state, until_channels=True)
        if channels is None:
            return 0
        return _serve_connections(stdin, stdout, state, channels)
    finally:
        state.close()


def _answer_jobs(
    stdin: BinaryIO, stdout: BinaryIO, state: Decoder, *, until_channels: bool = False
) -> tuple[int, int] | None:
    """Answer frames until stdin ends (None), or, with ``until_channels``, a Hello naming channels it can use."""
    decoder = msgspec.msgpack.Decoder(ToDecoder)
    while True:
        header = _read_exactly(stdin, HEADER_BYTES)
        if header is None:
            return None
        payload = _read_exactly(stdin, frame_length(header))
        if payload is None:
            return None
        message = decoder.decode(payload)
        if not isinstance(message, Hello):
            answer = state.expire(message) if isinstance(message, Expire) else state.handle(message)
            stdout.write(frame(answer))
            stdout.flush()
            continue
        ready = state.hello(message)
        channels = message.channels if until_channels else None
        ready.serves = channels is not None and _can_take(channels)
        stdout.write(frame(ready))
        stdout.flush()
        if ready.serves:
            return channels


def _can_take(channels: tuple[int, int]) -> bool:
    if not hasattr(socket, "recv_fds"):
        return False
    try:
        for fd in channels:
            os.fstat(fd)
    except OSError:
        return False
    return True


def _serve_connections(stdin: BinaryIO, stdout: BinaryIO, state: Decoder, channels: tuple[int, int]) -> int:
    import anyio

    from bridge.receiver.handed import HandedConnections

    handed = HandedConnections(state.handle, socket.socket(fileno=channels[0]), socket.socket(fileno=channels[1]))

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(handed.run)
            # stdin still carries the bridge's jobs (and its end means: stop)
            await anyio.to_thread.run_sync(_answer_jobs, stdin, stdout, state, abandon_on_cancel=True)
            tg.cancel_scope.cancel()

    anyio.run(main)
    return 0


def main(argv: list[str]) -> int:
    if argv:
        print("usage: the bridge starts this process itself; it takes no arguments", file=sys.stderr)
        return 2
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but answers may reach the answer channel
    _yield_to_the_bridge()
    return serve(stdin, stdout)


def _yield_to_the_bridge() -> None:
    """Run at a lower CPU priority than the bridge: when both want a core, its live events go first.

    A telemetry batch answered a few milliseconds later costs nothing (the exporter waits, the records
    are stored before the answer); a live event late by as much is what a user sees. Only a little
    lower: this process serves the receiver's connections too, and at 10 a telemetry flood on a
    busy two-core machine got ~25 % fewer records/s through for no gain in the stream's lag
    (docs/performance.md).
    """
    nice = getattr(os, "nice", None)  # POSIX only; Windows runs it at the bridge's priority
    if nice is not None:
        with contextlib.suppress(OSError):
            nice(NICENESS)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
