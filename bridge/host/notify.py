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


class Notifier:
    def __init__(self, keep: int = KEEP) -> None:
        self._seq = 0
        self._held: deque[dict[str, Any]] = deque(maxlen=keep)
        self._sink: Sink | None = None
        self._lock = threading.Lock()
        self._watchers: list[Callable[[str, dict[str, Any]], None]] = []

    @property
    def last_seq(self) -> int:
        return self._seq

    def attach(self, sink: Sink) -> None:
        """Route notifications to ``sink`` (the transport queues until framing is known)."""
        self._sink = sink

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
        if self._sink is not None:
            self._sink(message)
        for watcher in self._watchers:
            watcher(method, params_out)
        return seq

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
