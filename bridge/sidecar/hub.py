"""Who listens to the sidecar: every subscriber of the supervisor, in one typed hub.

Other subsystems plug in here without touching the host or each other:

- the typed state and lifecycle events (:mod:`.events`): the host notifier,
  reliability and the transcript subscribe to them;
- notification batches from codex (capture), gated by the kill switch;
- codex→bridge requests (approvals), one handler per method;
- frames codex sent that could not be used (any generation);
- every new JSON-RPC client, before it reads (transcript taps, back-pressure).

The hub outlives generations: :meth:`Hub.wire` hands a new client what was
registered so far, and a handler set later also reaches the live client. A
failing listener is logged and never stops the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from bridge.sidecar.events import LifecycleListener, Publisher, StateListener
from bridge.sidecar.protocol import Envelope
from bridge.sidecar.rpc import RpcClient
from bridge.sidecar.rpc_types import FaultListener, NotificationListener, RequestHandler

log = logging.getLogger("bridge.sidecar")

ClientListener = Callable[[RpcClient], None]


class Hub:
    """The supervisor's subscribers; ``live()`` is the client of the current generation (if any)."""

    def __init__(self, publisher: Publisher, live: Callable[[], RpcClient | None]) -> None:
        self._pub = publisher
        self._live = live
        self._stream: list[NotificationListener] = []
        self._handlers: dict[str, RequestHandler] = {}
        self._faults: list[FaultListener] = []
        self._clients: list[ClientListener] = []

    # --- subscribing ------------------------------------------------------------------------

    def add_state_listener(self, listener: StateListener) -> None:
        """``listener(state)`` each time the status the host would see changes (the host notifier is one)."""
        self._pub.state_listeners.append(listener)

    def add_lifecycle_listener(self, listener: LifecycleListener) -> None:
        """``listener(event)`` for every ``Spawned``, ``Exited`` and ``Rehandshaken`` (:mod:`.events`)."""
        self._pub.lifecycle_listeners.append(listener)

    def add_stream_listener(self, listener: NotificationListener) -> None:
        """``listener(batch)`` gets every notification batch while the kill switch is off."""
        self._stream.append(listener)

    def set_request_handler(self, method: str, handler: RequestHandler | None) -> None:
        """Handle codex→bridge requests ``method`` (approvals); unhandled ones are answered -32601."""
        if handler is None:
            self._handlers.pop(method, None)
        else:
            self._handlers[method] = handler
        client = self._live()
        if client is not None:
            client.set_request_handler(method, handler)

    def add_fault_listener(self, listener: FaultListener) -> None:
        """``listener(fault)`` for every frame codex sent that could not be used (any generation)."""
        self._faults.append(listener)
        client = self._live()
        if client is not None:
            client.add_fault_listener(listener)

    def add_client_listener(self, listener: ClientListener) -> None:
        """``listener(client)`` for every new connection to codex, before it reads (transcript taps)."""
        self._clients.append(listener)

    # --- what the supervisor calls ------------------------------------------------------------

    def wire(self, client: RpcClient) -> None:
        """A new generation's client: give it the fault listeners and request handlers, then announce it."""
        for listener in self._faults:
            client.add_fault_listener(listener)
        for method, handler in self._handlers.items():
            client.set_request_handler(method, handler)
        for created in self._clients:
            try:
                created(client)
            except Exception:
                log.exception("client listener failed")

    def stream(self, batch: list[Envelope]) -> None:
        """Hand a notification batch of the current generation to the stream listeners."""
        for listener in self._stream:
            try:
                listener(batch)
            except Exception:
                log.exception("stream listener failed")
