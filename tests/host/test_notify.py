"""Notification numbering and catch-up, in-process."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bridge.host.notify import Notifier


def test_seq_increases_by_one_across_methods_and_reaches_the_sink() -> None:
    import json

    raw: list[bytes] = []
    notifier = Notifier()
    notifier.attach(raw.append)
    notifier.emit("codex-app-server-status", {"state": "running"})
    notifier.emit("session:live:event", {"type": "SessionDelta"})
    sent: list[dict[str, Any]] = [json.loads(r) for r in raw]
    assert [m["params"]["seq"] for m in sent] == [1, 2]
    assert all(m["jsonrpc"] == "2.0" for m in sent)


def test_since_returns_the_missing_tail_or_none_when_gone() -> None:
    notifier = Notifier(keep=3)
    for i in range(5):
        notifier.emit("m", {"i": i})
    assert notifier.since(5) == []
    assert [m["params"]["seq"] for m in notifier.since(3) or []] == [4, 5]
    assert [m["params"]["seq"] for m in notifier.since(2) or []] == [3, 4, 5]
    assert notifier.since(1) is None


def test_bursts_and_single_messages_share_one_numbering_and_one_catch_up() -> None:
    """The stream's bursts (built with the numbers handed out here) and other notifications interleave: the wire and
    ``since`` see one gap-free seq, and a host that fell behind the kept window is told so."""
    import json

    wire: list[bytes] = []
    notifier = Notifier(keep=4)
    notifier.attach(wire.append, wire.extend)
    message = b'{"jsonrpc":"2.0","method":"session:live:event","params":{"n":%d,"seq":%d}}'

    def burst(*ns: int) -> Callable[[int], list[bytes]]:
        return lambda first: [message % (n, seq) for seq, n in enumerate(ns, first)]

    notifier.emit("m", {"n": 0})
    notifier.emit_built(burst(1, 2, 3))
    notifier.emit("m", {"n": 4})
    notifier.emit_built(burst(5))
    notifier.emit_built(burst())  # nothing to send: no number is used
    sent = [json.loads(data) for data in wire]
    assert [(m["params"]["n"], m["params"]["seq"]) for m in sent] == [(n, n + 1) for n in range(6)]
    assert notifier.last_seq == 6
    assert [m["params"]["n"] for m in notifier.since(3) or []] == [3, 4, 5]
    assert notifier.since(2) == sent[2:]
    assert notifier.since(1) is None  # seq 2 is no longer kept
    assert notifier.since(6) == [] and notifier.since(60) == []
