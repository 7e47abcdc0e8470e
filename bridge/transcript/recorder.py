"""Writing a transcript from a running bridge or pass-through, off the hot path.

:meth:`Recorder.record` only appends a tuple to a list under a lock (the
stream's hot path must stay fast); a daemon thread turns what accumulated into
redacted lines (:mod:`bridge.transcript.format`) and writes them with one
``write`` per batch straight to the file descriptor, so what was written
survives a ``kill -9`` of the bridge: a crash can lose at most the last
fraction of a second, never leave a broken line before the end.

Size is bounded by rotation: when the file would grow past ``max_bytes`` it is
renamed to ``FILE.1`` (replacing an older one) and a fresh ``FILE`` is
started, so the transcript never takes more than about twice ``max_bytes``.
The clock ``t`` keeps running across a rotation.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bridge.sidecar.events import Exited, LifecycleEvent
from bridge.transcript.format import Channel, Direction, exit_line, frame_line

log = logging.getLogger("bridge.transcript")

FLUSH_INTERVAL_S = 0.05
DEFAULT_MAX_BYTES = 64 * 1024 * 1024

# (monotonic, wall, channel, direction, raw, conn) or an exit marker
_Entry = tuple[float, float, str, str, bytes, int | None]


class Recorder:
    """Appends transcript lines to ``path`` from a background thread."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self._clock = clock
        self._wall = wall
        self._start = clock()
        self._lock = threading.Lock()
        self._entries: list[_Entry] = []
        self._wake = threading.Event()
        self._closed = False
        self._idle = threading.Condition(threading.Lock())
        self._written_seq = 0
        self._queued_seq = 0
        self.lines_written = 0
        self.rotations = 0
        self.write_errors = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = self._open()
        self._size = os.fstat(self._fd).st_size
        self._thread = threading.Thread(target=self._run, name="transcript-writer", daemon=True)
        self._thread.start()

    def _open(self) -> int:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.fchmod(fd, 0o600)  # a transcript found from before is made private too: it holds whole sessions
        return fd

    # ---------------------------------------------------------------- recording (any thread)

    def record(self, channel: Channel, direction: Direction, raw: bytes, conn: int | None = None) -> None:
        """Queue one frame's bytes (cheap: no decoding here)."""
        entry = (self._clock(), self._wall(), channel, direction, raw, conn)
        with self._lock:
            if self._closed:
                return
            self._entries.append(entry)
            self._queued_seq += 1
        self._wake.set()

    def record_many(self, channel: Channel, direction: Direction, raws: list[bytes]) -> None:
        now, wall = self._clock(), self._wall()
        with self._lock:
            if self._closed:
                return
            self._entries.extend((now, wall, channel, direction, raw, None) for raw in raws)
            self._queued_seq += len(raws)
        self._wake.set()

    def record_exit(self, conn: int, code: int | None, expected: bool) -> None:
        """A lifecycle line: codex connection ``conn`` ended with ``code``."""
        mono, wall = self._clock(), self._wall()
        line = exit_line(mono - self._start, wall, conn, code, expected)
        with self._lock:
            if self._closed:
                return
            self._entries.append((mono, wall, "line", "in", line, conn))
            self._queued_seq += 1
        self._wake.set()

    # ---------------------------------------------------------------- writing (own thread)

    def _run(self) -> None:
        while True:
            self._wake.wait(FLUSH_INTERVAL_S)
            self._wake.clear()
            with self._lock:
                entries, self._entries = self._entries, []
                closed = self._closed
            if entries:
                self._write(entries)
            if closed:
                with self._lock:
                    if not self._entries:
                        return

    def _line(self, entry: _Entry) -> bytes:
        mono, wall, channel, direction, raw, conn = entry
        if channel == "line":
            return raw
        return frame_line(mono - self._start, wall, channel, direction, raw, conn)  # type: ignore[arg-type]

    def _write(self, entries: list[_Entry]) -> None:
        chunk: list[bytes] = []
        size = 0
        for entry in entries:
            try:
                line = self._line(entry)
            except Exception:
                log.exception("a transcript line could not be built; it is left out")
                continue
            if self._size + size + len(line) > self.max_bytes and self._size + size > 0:
                if chunk:
                    self._flush_chunk(chunk)
                    chunk, size = [], 0
                self._rotate()
            chunk.append(line)
            size += len(line)
        if chunk:
            self._flush_chunk(chunk)
        with self._idle:
            self._written_seq += len(entries)
            self._idle.notify_all()

    def _flush_chunk(self, chunk: list[bytes]) -> None:
        data = b"".join(chunk)
        view = memoryview(data)
        try:
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
        except OSError as exc:
            self.write_errors += 1
            if self.write_errors == 1:
                log.error("writing the transcript %s failed: %s", self.path, exc)
            return
        self._size += len(data)
        self.lines_written += len(chunk)

    def _rotate(self) -> None:
        try:
            os.close(self._fd)
            os.replace(self.path, self.path.with_name(self.path.name + ".1"))
        except OSError as exc:
            log.error("rotating the transcript %s failed: %s", self.path, exc)
        self._fd = self._open()
        self._size = os.fstat(self._fd).st_size
        self.rotations += 1

    # ---------------------------------------------------------------- control

    def flush(self, timeout: float = 2.0) -> bool:
        """Wait until everything recorded so far is written; False on timeout."""
        with self._lock:
            target = self._queued_seq
        self._wake.set()
        with self._idle:
            return self._idle.wait_for(lambda: self._written_seq >= target, timeout)

    def close(self, timeout: float = 2.0) -> None:
        """Write what is queued, then stop; later records are ignored."""
        with self._lock:
            self._closed = True
        self._wake.set()
        self._thread.join(timeout)
        with contextlib.suppress(OSError):
            os.close(self._fd)


class BridgeTranscript:
    """The taps a running bridge needs: host frames in and out, and every codex connection."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self._conns = 0
        self._current: int | None = None
        record = recorder.record
        self.host_in: Callable[[bytes], None] = lambda raw: record("host", "in", raw)
        self.host_out: Callable[[bytes], None] = lambda raw: record("host", "out", raw)
        self.host_out_many: Callable[[list[bytes]], None] = lambda raws: recorder.record_many("host", "out", raws)

    def client_created(self, client: Any) -> None:
        """Supervisor client listener: tap a new connection to codex as the next ``conn``."""
        self._conns += 1
        conn = self._conns
        self._current = conn
        record = self.recorder.record
        client.add_tap(lambda direction, raw: record("sidecar", direction, raw, conn))

    def sidecar_lifecycle(self, event: LifecycleEvent) -> None:
        """Supervisor lifecycle listener: an ended connection gets its exit line."""
        if isinstance(event, Exited) and self._current is not None:
            self.recorder.record_exit(self._current, event.code, event.expected)
            self._current = None

    def close(self) -> None:
        self.recorder.close()
