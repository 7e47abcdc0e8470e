"""Notifications to the host, numbered with ``seq`` and kept for catch-up.

Every notification on a connection gets the next ``seq`` (docs/protocol.md §5) across
all methods, and the newest 10,000 are kept so ``get_live_events`` can serve a
host that missed some. Each message is encoded once, here, and kept encoded:
the stream's bursts cost one encode per event and one write per burst.
Subsystems get a :class:`Notifier` handed to them; they never import the
transport.
"""

from __future__ import annotations

import threading
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

import msgspec

KEEP = 10_000

Sink = Callable[[bytes], None]
BatchSink = Callable[[list[bytes]], None]

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


class Notifier:
    def __init__(self, keep: int = KEEP, run_id: str | None = None) -> None:
        # seq restarts at 1 with every bridge process; the run id tells a host which numbering it holds.
        self.run_id = run_id or uuid.uuid4().hex
        self._seq = 0
        self._held: deque[bytes] = deque(maxlen=keep)  # the newest messages; the last one has seq _seq
        self._sink: Sink | None = None
        self._batch_sink: BatchSink | None = None
        self._lock = threading.Lock()

    @property
    def last_seq(self) -> int:
        return self._seq

    def attach(self, sink: Sink, batch_sink: BatchSink | None = None) -> None:
        """Route encoded notifications to ``sink`` (the transport queues until framing is known).

        ``batch_sink`` takes a whole burst at once (one write for many events).
        """
        self._sink = sink
        self._batch_sink = batch_sink

    def emit(self, method: str, params: Any) -> int:
        """Send ``method`` with ``params`` (a Struct or a dict) plus ``seq``; returns the seq."""
        body: dict[str, Any] = params if isinstance(params, dict) else msgspec.to_builtins(params)
        with self._lock:
            self._seq += 1
            seq = self._seq
            body = {**body, "seq": seq}
            data = _encode({"jsonrpc": "2.0", "method": method, "params": body})
            self._held.append(data)
            if self._sink is not None:  # under the lock: the wire order is the seq order
                self._sink(data)
        return seq

    def emit_built(self, build: Callable[[int], list[bytes]]) -> None:
        """Send a burst of whole messages that ``build(first_seq)`` encodes (the stream's hot path).

        ``build`` runs under the lock, so the ``seq`` it writes into message ``i`` (``first_seq + i``)
        is the one it gets and the wire order is the seq order; it must be quick and must not emit.
        Encoding each message once, with its number in it, saves a copy of every live event.
        """
        with self._lock:
            first = self._seq + 1
            encoded = build(first)
            if not encoded:
                return
            self._held.extend(encoded)
            self._seq = first + len(encoded) - 1
            if self._batch_sink is not None:
                self._batch_sink(encoded)
            elif self._sink is not None:
                for data in encoded:
                    self._sink(data)

    def since(self, since_seq: int) -> list[dict[str, Any]] | None:
        """Held notifications with ``seq > since_seq``; ``None`` when some are gone."""
        with self._lock:
            held = list(self._held)
            last = self._seq
        if since_seq >= last:
            return []
        oldest = last - len(held) + 1  # seq is consecutive: the held messages are oldest..last
        if since_seq + 1 < oldest:
            return None
        return [_decode(data) for data in held[since_seq + 1 - oldest :]]
