"""Notifications to the host, numbered with ``seq`` and kept for catch-up.

Every notification on a connection gets the next ``seq`` (CONTRACT §5) across
all methods, and the newest 10,000 are kept so ``get_live_events`` can serve a
host that missed some. Subsystems get a :class:`Notifier` handed to them; they
never import the transport.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any

import msgspec

KEEP = 10_000

Sink = Callable[[dict[str, Any]], None]
BatchSink = Callable[[list[dict[str, Any]]], None]


class Notifier:
    def __init__(self, keep: int = KEEP) -> None:
        self._seq = 0
        self._held: deque[dict[str, Any]] = deque(maxlen=keep)
        self._sink: Sink | None = None
        self._batch_sink: BatchSink | None = None
        self._lock = threading.Lock()
        self._watchers: list[Callable[[str, dict[str, Any]], None]] = []

    @property
    def last_seq(self) -> int:
        return self._seq

    def attach(self, sink: Sink, batch_sink: BatchSink | None = None) -> None:
        """Route notifications to ``sink`` (the transport queues until framing is known).

        ``batch_sink`` takes a whole burst at once (one write for many events).
        """
        self._sink = sink
        self._batch_sink = batch_sink

    def watch(self, watcher: Callable[[str, dict[str, Any]], None]) -> None:
        """``watcher(method, params)`` sees every notification after it is sent (e.g. to re-evaluate the mode)."""
        self._watchers.append(watcher)

    def emit(self, method: str, params: Any) -> int:
        """Send ``method`` with ``params`` (a Struct or a dict) plus ``seq``; returns the seq."""
        body: dict[str, Any] = params if isinstance(params, dict) else msgspec.to_builtins(params)
        with self._lock:
            self._seq += 1
            seq = self._seq
            params_out: dict[str, Any] = {**body, "seq": seq}
            message = {"jsonrpc": "2.0", "method": method, "params": params_out}
            self._held.append(message)
            if self._sink is not None:  # under the lock: the wire order is the seq order
                self._sink(message)
        for watcher in self._watchers:
            watcher(method, params_out)
        return seq

    def emit_many(self, method: str, bodies: list[dict[str, Any]]) -> None:
        """Send a burst of notifications of one method (the stream's hot path)."""
        if not bodies:
            return
        with self._lock:
            seq = self._seq
            messages: list[dict[str, Any]] = []
            for body in bodies:
                seq += 1
                body["seq"] = seq
                messages.append({"jsonrpc": "2.0", "method": method, "params": body})
            self._seq = seq
            self._held.extend(messages)
            if self._batch_sink is not None:
                self._batch_sink(messages)
            elif self._sink is not None:
                for message in messages:
                    self._sink(message)
        for watcher in self._watchers:
            for body in bodies:
                watcher(method, body)

    def since(self, since_seq: int) -> list[dict[str, Any]] | None:
        """Held notifications with ``seq > since_seq``; ``None`` when some are gone."""
        with self._lock:
            held = list(self._held)
            last = self._seq
        if since_seq >= last:
            return []
        oldest = held[0]["params"]["seq"] if held else last + 1
        if since_seq + 1 < oldest:
            return None
        return [m for m in held if m["params"]["seq"] > since_seq]
