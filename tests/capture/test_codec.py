"""The hot-path codec against frames the real codex 0.169.0 wrote, and against broken frames."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from bridge.capture import codex_events as ev
from tests.support.codec import Codec, decode_frame

DATA = Path(__file__).resolve().parents[2] / "fixtures" / "codex-0.169.0" / "stream.jsonl"


@pytest.fixture(scope="module")
def recorded() -> list[bytes]:
    return [line for line in DATA.read_bytes().split(b"\n") if line]


def test_every_recorded_frame_decodes_without_problems(recorded: list[bytes]) -> None:
    codec = Codec()
    frames = codec.decode_batch(recorded)
    assert len(frames) == len(recorded) == codec.frames
    assert codec.problems == 0
    assert [f for f in frames if f.problem] == []
    # Only methods without a struct stay raw, and they are counted.
    assert set(codec.untyped) == {"remoteControl/status/changed"}
    for frame in frames:
        if frame.kind in ("notification", "request") and frame.method in (ev.NOTIFICATIONS | ev.SERVER_REQUESTS):
            expected = (ev.NOTIFICATIONS | ev.SERVER_REQUESTS)[frame.method]
            assert isinstance(frame.params, expected), frame.method
            assert frame.emitted_at_ms is not None or frame.kind == "request"


def test_recorded_turns_carry_what_capture_needs(recorded: list[bytes]) -> None:
    frames = Codec().decode_batch(recorded)
    completed = [f.params for f in frames if f.method == "turn/completed"]
    assert [t.turn.status for t in completed] == ["completed", "completed", "completed", "failed"]
    assert completed[-1].turn.error is not None
    assert completed[-1].turn.error.codex_error_info == "internalServerError"

    items = [f.params.item for f in frames if f.method == "item/completed"]
    commands = [i for i in items if i.type == "commandExecution"]
    assert [c.status for c in commands] == ["completed", "declined"]
    assert commands[0].exit_code == 0
    assert commands[0].aggregated_output is not None and "capture-bridge-ok" in commands[0].aggregated_output
    assert commands[1].exit_code is None and commands[1].aggregated_output is None
    agent = [i for i in items if i.type == "agentMessage"]
    assert agent[0].text == "Hello from the fake model! You said: Say hi"
    assert agent[0].phase == "final_answer"
    reasoning = [i for i in items if i.type == "reasoning"]
    assert reasoning[0].summary and reasoning[0].content == ["User said: Say hi"]
    user = [i for i in items if i.type == "userMessage"]
    assert user[0].content is not None and user[0].content[0]["text"] == "Say hi [[scenario:chat]]"

    deltas = [f.params for f in frames if isinstance(f.params, ev.ItemDelta)]
    assert {type(d) for d in deltas} == {ev.ItemDelta, ev.ReasoningSummaryTextDelta, ev.ReasoningTextDelta}
    text = "".join(d.delta for d in deltas if d.item_id == agent[0].id)
    assert text == agent[0].text

    approvals = [f for f in frames if f.kind == "request"]
    assert [a.method for a in approvals] == ["item/commandExecution/requestApproval"] * 2
    assert approvals[0].id == 0 and approvals[0].params.item_id == commands[0].id
    assert approvals[0].params.available_decisions  # on the wire, not in the schema
    resolved = [f.params for f in frames if f.method == "serverRequest/resolved"]
    assert [r.request_id for r in resolved] == [a.id for a in approvals]

    usage = [f.params for f in frames if f.method == "thread/tokenUsage/updated"]
    assert usage[0].token_usage.last.total_tokens == 1230

    statuses = [f.params.status for f in frames if f.method == "thread/status/changed"]
    assert ["waitingOnApproval"] in [s.active_flags for s in statuses]
    assert statuses[-1].type == "systemError"

    errors = [f.params for f in frames if f.method == "error"]
    assert [e.will_retry for e in errors] == [True, False]

    responses = [f for f in frames if f.kind == "response"]
    assert responses and all(len(f.result) > 0 and len(f.error) == 0 for f in responses)


@pytest.mark.parametrize(
    ("line", "kind", "problem"),
    [
        (b"not json", "invalid", "protocol_violation"),
        (b"[1, 2]", "invalid", "protocol_violation"),
        (b'{"method": 5}', "invalid", "protocol_violation"),
        (b'{"params": {}}', "invalid", "protocol_violation"),
        (b'{"method": "item/agentMessage/delta", "params": {"threadId": "t", "turnId": "u", "itemId": "i"}}',
         "notification", "missing_fields"),
        (b'{"method": "item/agentMessage/delta", "params": {"threadId": "t", "turnId": "u", "itemId": "i", "delta": 7}'
         b'}',
         "notification", "schema_mismatch"),
        (b'{"method": "turn/completed"}', "notification", "missing_fields"),
        (b'{"method": "item/commandExecution/requestApproval", "id": 3, "params": {"threadId": "t"}}',
         "request", "missing_fields"),
    ],
)  # fmt: skip
def test_broken_frames_become_problems_not_exceptions(line: bytes, kind: str, problem: str) -> None:
    frame = decode_frame(line)
    assert frame.kind == kind
    assert frame.params is None
    assert frame.problem is not None and frame.problem.kind == problem
    assert frame.raw == line


def test_unknown_fields_methods_and_item_types_are_tolerated() -> None:
    codec = Codec()
    frames = codec.decode_chunk(
        b'{"method":"item/completed","params":{"threadId":"t","turnId":"u","completedAtMs":1,"newField":{"x":1},'
        b'"item":{"type":"hologram","id":"h1","sparkle":true}},"emittedAtMs":5}\n'
        b'{"method":"thread/hologram/updated","params":{"threadId":"t"},"emittedAtMs":6}\n'
        b"\n"
        b'{"method":"item/tool/requestUserInput","id":"r1","params":{"q":1}}\n'
        b'{"id":9,"result":null}\n'
        b'{"id":10,"error":{"code":-32600,"message":"nope"}}'
    )
    assert [f.kind for f in frames] == ["notification", "notification", "request", "response", "response"]
    item = frames[0].params.item
    assert (item.type, item.id, item.text) == ("hologram", "h1", None)
    assert frames[0].emitted_at_ms == 5
    assert frames[1].params is None and msgspec.json.decode(frames[1].params_raw) == {"threadId": "t"}
    assert frames[2].id == "r1" and frames[2].problem is None
    assert bytes(frames[3].result) == b"null" and len(frames[3].error) == 0
    assert msgspec.json.decode(frames[4].error)["code"] == -32600
    assert codec.untyped == {"thread/hologram/updated": 1, "item/tool/requestUserInput": 1}
    assert codec.frames == 5 and codec.problems == 0


def test_invalid_utf8_in_params_is_a_parser_problem_not_an_exception() -> None:
    """Found by tests/reliability/test_fuzz_codex.py: it used to stall capture (the batch was retried)."""
    from bridge.capture.normalize import NormalizeError, normalize

    params = b'{"threadId":"t","turnId":"u","itemId":"i","delta":"\xff"}'
    try:
        normalize("item/agentMessage/delta", params, 1)
    except NormalizeError as exc:
        assert exc.kind == "protocol_violation"
    else:
        raise AssertionError("invalid UTF-8 was accepted")


@pytest.mark.parametrize(
    ("params", "kind"),
    [
        (b'{"threadId":"t","turnId":"u","itemId":"i"}', "missing_fields"),
        (b'{"threadId":"t","turnId":"u","itemId":"i","delta":5}', "schema_mismatch"),
        (b'{"threadId":"t","turnId":"u","itemId":"i","delta":"x"', "protocol_violation"),
    ],
)
def test_a_delta_is_decoded_from_the_frames_own_bytes_and_keeps_no_copy(params: bytes, kind: str) -> None:
    """Deltas (nine frames in ten) are decoded straight from the envelope's raw params; their live
    payload is built from their fields, so no copy of the params is kept. A broken one is the same
    parser problem it always was."""
    from bridge.capture.ledger import delta_key, text_hash
    from bridge.capture.normalize import NormalizeError, normalize

    good = msgspec.Raw(b'{"threadId":"t","turnId":"u","itemId":"i","delta":"hello"}')
    event = normalize("item/agentMessage/delta", good, 7)
    assert event is not None and event.kind == "delta" and event.raw_params == b""
    assert (event.delta, event.turn_id, event.text_hash) == ("hello", "u", text_hash("hello"))
    assert event.key == delta_key("item/agentMessage/delta", "t", "i", 7, text_hash("hello"))
    with pytest.raises(NormalizeError) as caught:
        normalize("item/agentMessage/delta", msgspec.Raw(params), 7)
    assert caught.value.kind == kind
