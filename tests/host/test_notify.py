"""Notification numbering and catch-up, in-process."""

from __future__ import annotations

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
