"""The on-disk export queue (``<dataDir>/export-queue``): one file per encoded batch.

Batches wait here until the endpoint takes them, so they survive a restart
and an unreachable endpoint never slows the stream; past the bounds the
oldest are dropped and counted.
"""

from __future__ import annotations

import os
import re
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bridge.enrichment.targets import Signal


@dataclass(frozen=True, slots=True)
class QueuedBatch:
    seq: int
    signal: Signal
    path: Path
    size: int


_NAME = re.compile(r"^(\d{16})-(traces|logs)\.pb$")


class DiskQueue:
    """One file per encoded batch, oldest first, bounded by count and bytes.

    Files are written under a temporary name and renamed into place, so a
    crash never leaves a half batch. When a bound is exceeded the oldest
    batches (never the one being sent) are deleted and counted in
    ``dropped_batches``. Methods are blocking: call them from a worker thread.
    """

    def __init__(self, root: Path, *, max_batches: int = 2000, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.root = root
        self.max_batches = max_batches
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._batches: deque[QueuedBatch] = deque()
        self._bytes = 0
        self._in_flight: set[int] = set()
        self.dropped_batches = 0
        self.dropped_bytes = 0
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        found: list[QueuedBatch] = []
        for entry in root.iterdir():
            if entry.name.endswith(".tmp"):
                entry.unlink(missing_ok=True)  # a write cut short by a crash
                continue
            match = _NAME.match(entry.name)
            if match:
                sig: Signal = "traces" if match.group(2) == "traces" else "logs"
                found.append(QueuedBatch(int(match.group(1)), sig, entry, entry.stat().st_size))
        found.sort(key=lambda b: b.seq)
        self._batches.extend(found)
        self._bytes = sum(b.size for b in found)
        self._next = (found[-1].seq + 1) if found else 1
        dropped = self._enforce()
        self._unlink(dropped)

    # ------------------------------------------------------------ state
    @property
    def depth(self) -> int:
        return len(self._batches)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    # ------------------------------------------------------------ writing
    def put(self, signal: Signal, body: bytes) -> list[QueuedBatch]:
        """Store one batch durably; returns the batches dropped to stay within bounds."""
        with self._lock:
            seq = self._next
            self._next += 1
        name = f"{seq:016d}-{signal}.pb"
        tmp = self.root / f".{name}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(body)
            fh.flush()
            os.fsync(fh.fileno())
        final = self.root / name
        os.replace(tmp, final)
        with self._lock:
            self._batches.append(QueuedBatch(seq, signal, final, len(body)))
            self._bytes += len(body)
            dropped = self._enforce()
        self._unlink(dropped)
        return dropped

    def _enforce(self) -> list[QueuedBatch]:
        dropped: list[QueuedBatch] = []
        while len(self._batches) > self.max_batches or self._bytes > self.max_bytes:
            victim = next((b for b in self._batches if b.seq not in self._in_flight), None)
            if victim is None:
                break
            self._batches.remove(victim)
            self._bytes -= victim.size
            self.dropped_batches += 1
            self.dropped_bytes += victim.size
            dropped.append(victim)
        return dropped

    @staticmethod
    def _unlink(batches: Sequence[QueuedBatch]) -> None:
        for batch in batches:
            batch.path.unlink(missing_ok=True)

    # ------------------------------------------------------------ sending
    def claim(self) -> QueuedBatch | None:
        """The oldest batch not being sent, now marked as being sent."""
        with self._lock:
            for batch in self._batches:
                if batch.seq not in self._in_flight:
                    self._in_flight.add(batch.seq)
                    return batch
        return None

    def release(self, batch: QueuedBatch) -> None:
        """Sending failed: the batch stays for a later attempt."""
        with self._lock:
            self._in_flight.discard(batch.seq)

    def done(self, batch: QueuedBatch) -> None:
        """The batch was delivered (or refused for good): forget it."""
        with self._lock:
            self._in_flight.discard(batch.seq)
            try:
                self._batches.remove(batch)
            except ValueError:
                return
            self._bytes -= batch.size
        batch.path.unlink(missing_ok=True)

    def pending(self) -> list[QueuedBatch]:
        with self._lock:
            return list(self._batches)
