"""The OTEL baseline's events, fed to the capture pipeline a window at a time.

The decoder process maps what each request stored to capture events
(:mod:`bridge.receiver.baseline`) and the receiver hands them here as each request
is answered. They are fed :data:`COALESCE_S` later together with whatever else
arrived meanwhile: during a telemetry flood that is one capture transaction for
several requests instead of one each, which keeps the stream's live events prompt
beside it (docs/performance.md). Twenty milliseconds is nothing next to how seldom
an exporter sends (every few seconds).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import anyio

from bridge.capture.events import CaptureEvent

log = logging.getLogger("bridge.receiver.baseline")

COALESCE_S = 0.02  # what arrives within this window is fed as one batch


class BaselineWindow:
    """Collects the baseline's events and feeds them on a window's close (or at once on :meth:`flush`)."""

    def __init__(self, feed: Callable[[list[CaptureEvent]], None]) -> None:
        self._feed = feed
        self._offered: list[CaptureEvent] = []
        self._arrived = anyio.Event()

    def offer(self, events: Sequence[CaptureEvent]) -> None:
        """Events to feed with the rest of their window (never blocks)."""
        self._offered.extend(events)
        self._arrived.set()

    async def run(self) -> None:
        """Feed each window as it closes (until cancelled)."""
        while True:
            await self._arrived.wait()
            await anyio.sleep(COALESCE_S)
            self._arrived = anyio.Event()
            self.flush()

    def flush(self) -> None:
        """Feed what was offered and not fed yet, now (the bridge stops: the capture commits it before it ends)."""
        batch, self._offered = self._offered, []
        if not batch:
            return
        try:
            self._feed(batch)
        except Exception:  # never let the window die: the records stay in otel_records
            log.exception("capturing %d OTEL baseline events failed; their records stay in otel_records", len(batch))
