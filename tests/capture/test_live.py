"""Live events built as bytes are exactly the contract's SessionDelta notifications.

The capture thread builds each ``session:live:event`` from shared pieces
(``bridge/capture/live.py``) instead of encoding a struct per event. These tests
pin that the bytes are, byte for byte, what encoding the documented shape gives,
for recorded codex streams and for the awkward cases: text that JSON must escape,
missing ids and timestamps, params that carry a secret.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec

from bridge.capture.events import CaptureEvent
from bridge.capture.ledger import Outcome
from bridge.capture.live import live_messages, payload_of
from bridge.capture.rows import Applied
from bridge.capture.store import CaptureStore
from bridge.host.notify import Notifier
from bridge.host.schemas_types import SessionDeltaEvent
from bridge.store.db import Database
from tests.capture.test_store import events

RECEIVED = "2026-12-03T17:00:00.123Z"
ACCEPTED = Outcome("accepted", "app_server_stream", None)


def documented(entry: Applied, seq: int) -> bytes:
    """The notification as the contract's struct encodes it (docs/protocol.md §5)."""
    ev = entry.event
    params = {
        "type": "SessionDelta", "threadId": ev.thread_id, "turnId": ev.turn_id, "itemId": ev.item_id,
        "eventType": ev.method, "source": ev.source, "sequenceId": entry.sequence_id, "receivedAtIso": RECEIVED,
        "emittedAtMs": ev.emitted_at_ms, "key": ev.key, "payload": payload_of(ev), "seq": seq,
    }  # fmt: skip
    return msgspec.json.encode({"jsonrpc": "2.0", "method": "session:live:event", "params": params})


def numbered(applied: list[Applied]) -> list[bytes]:
    out: list[bytes] = []
    notifier = Notifier()
    notifier.attach(out.append, out.extend)
    notifier.emit_built(lambda first: live_messages(applied, RECEIVED, first))
    return out


def event(**fields: Any) -> CaptureEvent:
    base: dict[str, Any] = {"kind": "delta", "method": "item/agentMessage/delta", "source": "app_server_stream",
                            "key": "k", "thread_id": "t-1", "turn_id": "u-1", "item_id": "i-1",
                            "emitted_at_ms": 1_764_781_200_000, "delta": "hi"}  # fmt: skip
    return CaptureEvent(**{**base, **fields})


def test_recorded_streams_are_sent_as_the_documented_struct_encodes_them(tmp_path: Path) -> None:
    store = CaptureStore(Database(tmp_path / "c.db"))
    applied = store.apply(events("shell") + events("chat"))
    assert {e.event.kind for e in applied} >= {"delta", "item_completed", "turn_started", "thread"}
    sent = numbered(applied)
    assert sent == [documented(entry, seq) for seq, entry in enumerate(applied, start=1)]
    for data in sent:  # and they decode as the published schema says
        msgspec.json.decode(json.dumps(json.loads(data)["params"]).encode(), type=SessionDeltaEvent)


def test_escapes_missing_ids_and_runs_that_change_mid_batch() -> None:
    applied = [
        Applied(event(delta='quote " backslash \\ newline \n tab \t nul \x00 é 🎉'), ACCEPTED, 1),
        Applied(event(delta="next", emitted_at_ms=None), ACCEPTED, 2),  # same run: the shared head is reused
        Applied(event(item_id="i-2", delta="other item"), ACCEPTED, 1),
        Applied(event(turn_id=None, item_id=None, thread_id='t"2', delta=""), ACCEPTED, 7),
        Applied(event(method="item/reasoning/summaryTextDelta", delta=None), ACCEPTED, 3),
    ]
    sent = numbered(applied)
    assert sent == [documented(entry, seq) for seq, entry in enumerate(applied, start=1)]
    assert json.loads(sent[0])["params"]["payload"]["delta"] == 'quote " backslash \\ newline \n tab \t nul \x00 é 🎉'


def test_other_events_carry_codex_params_with_secrets_masked() -> None:
    clean = b'{"threadId":"t-1","turn":{"id":"u-1","status":"completed"}}'
    secret = b'{"threadId":"t-1","note":"key sk-proj-abcdefghijklmnopqrstuvwxyz0123456789"}'
    applied = [
        Applied(event(kind="turn_completed", method="turn/completed", delta=None, raw_params=clean), ACCEPTED, 0),
        Applied(event(kind="other", method="thread/tokenUsage", delta=None, raw_params=secret), ACCEPTED, 0),
        Applied(event(kind="thread", method="thread/started", delta=None, payload={"given": True}), ACCEPTED, 0),
    ]
    sent = numbered(applied)
    assert sent == [documented(entry, seq) for seq, entry in enumerate(applied, start=1)]
    assert clean in sent[0]  # codex's bytes, untouched
    assert b"sk-proj-abcdefghijklmnopqrstuvwxyz0123456789" not in sent[1]


def test_a_back_filled_item_is_pushed_with_its_item_like_a_streamed_one() -> None:
    """Items a thread snapshot fills in (after a restart, on attach) reach the host with the params codex's
    own item/completed would carry, redacted like the stream's, never with a null payload."""
    from bridge.capture import codex_events as ce
    from bridge.capture.snapshot import turn_events

    turn = msgspec.json.decode(
        b'{"id":"u1","status":"completed","items":['
        b'{"type":"agentMessage","id":"i1","text":"done; key sk-abcdefghijklmnop1234"},'
        b'{"type":"commandExecution","id":"i2","command":"ls","status":"completed","exitCode":0}]}',
        type=ce.Turn,
    )
    items = [ev for ev in turn_events("t1", [turn]) if ev.method == "item/completed"]
    payloads = [
        json.loads(frame)["params"]["payload"] for frame in numbered([Applied(ev, ACCEPTED, 0) for ev in items])
    ]
    assert [p["item"]["id"] for p in payloads] == ["i1", "i2"]
    assert all(p["threadId"] == "t1" and p["turnId"] == "u1" for p in payloads)
    assert payloads[1]["item"]["type"] == "commandExecution" and payloads[1]["item"]["exitCode"] == 0
    assert "sk-abcdefghijklmnop1234" not in json.dumps(payloads)
