"""The baseline's mapping, as tables over what the real codex and Claude Code sent (fixtures/crosssource)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from msgspec.structs import replace

from bridge.capture.events import OTEL, CaptureEvent
from bridge.receiver import mapping, mapping_codex
from bridge.receiver.baseline import BaselineFeeder
from bridge.receiver.records import OtelRecord
from tests.crosssource.support import fixture_records, fixture_stream, load_fixture
from tests.support.fake_anthropic import reply_text

CODEX = load_fixture("codex_chat_shell.json")
CLAUDE = load_fixture("claude_print.json")


def fed(records: list[OtelRecord], feeder: BaselineFeeder | None = None) -> list[CaptureEvent]:
    out: list[CaptureEvent] = []
    feeder = feeder or BaselineFeeder(out.extend)
    feeder.feed(records)
    return out


def stream_items() -> dict[str, tuple[str | None, str | None, str | None]]:
    """item id → (type, turn id, text) as the stream completed it."""
    return {
        e.item_id: (e.item.type, e.turn_id, e.item.text)
        for e in fixture_stream(CODEX)
        if e.kind == "item_completed" and e.item is not None and e.item_id is not None
    }


def test_codex_records_land_on_the_streams_identity() -> None:
    events = fed(fixture_records(CODEX))
    assert {e.source for e in events} == {OTEL}
    assert {e.thread_id for e in events} == {CODEX["threadId"]}
    assert {e.provider for e in events} == {"codex"}
    stream = stream_items()
    stream_turns = {turn for _, turn, _ in stream.values()}

    by_type: dict[str, list[CaptureEvent]] = {}
    for e in events:
        if e.item is not None and e.kind == "item_completed":
            by_type.setdefault(e.item.type or "", []).append(e)

    # agentMessage: item.id is the stream's agentMessage id, in the same turn, same text
    for e in by_type["agentMessage"]:
        assert e.item_id in stream and stream[e.item_id][:2] == ("agentMessage", e.turn_id)
        assert e.key == f"item|{e.thread_id}|{e.item_id}"
        assert e.item is not None and e.item.text == stream[e.item_id][2]
    # commandExecution: call_id is the stream's commandExecution id; the output is unwrapped to the plain output
    [command] = by_type["commandExecution"]
    assert command.item_id is not None and stream[command.item_id][:2] == ("commandExecution", command.turn_id)
    assert command.item is not None
    assert command.item.output == "hello-fixture\n" and command.item.exit_code == 0
    assert command.item.command == "echo hello-fixture"
    assert command.usage is not None and command.usage["durationMs"] > 0 and command.usage["toolName"] == "exec_command"
    # userMessage: no id of its own; its turn comes from its trace and matches the stream's userMessage of that turn
    prompts = by_type["userMessage"]
    assert len(prompts) == 2
    stream_prompts = {turn: text for kind, turn, text in stream.values() if kind == "userMessage"}
    for e in prompts:
        assert e.turn_id in stream_turns
        assert e.item_id == f"userprompt:{e.turn_id}"
        assert e.item is not None and e.item.text == stream_prompts[e.turn_id]

    # the approval decision rides on the command's item/started (the stream's key)
    [decision] = [e for e in events if e.kind == "item_started"]
    assert decision.key == f"item/started|{decision.thread_id}|{command.item_id}"
    assert decision.usage == {"toolDecision": {"decision": "approved", "source": "User"}}

    # each turn: started and completed from run_turn, usage from api requests and token counts
    assert Counter(e.kind for e in events if e.kind.startswith("turn")) == {"turn_started": 2, "turn_completed": 2}
    assert {e.turn_id for e in events if e.kind == "turn_completed"} == stream_turns
    assert {e.turn_status for e in events if e.kind == "turn_completed"} == {"completed"}
    usage: dict[str | None, Counter[str]] = {}
    for e in events:
        if e.kind == "usage":
            assert e.usage is not None and "last" not in e.usage  # never counted again by enrichment
            usage.setdefault(e.turn_id, Counter()).update(e.usage)
    assert set(usage) == stream_turns
    assert sorted(u["apiRequests"] for u in usage.values()) == [1, 2]  # the shell turn asked the model twice
    assert all(u["inputTokens"] == 1200 * u["apiRequests"] for u in usage.values())
    assert len([e for e in events if e.kind == "thread"]) == 1


def test_the_same_records_map_to_the_same_keys() -> None:
    first = [e.key for e in fed(fixture_records(CODEX))]
    again = [e.key for e in fed(fixture_records(CODEX))]
    assert first == again and len(set(first)) == len(first)


def test_claude_print_becomes_a_session_thread() -> None:
    events = fed(fixture_records(CLAUDE))
    [prompt_row] = [r for r in CLAUDE["records"] if r["name"] == "claude_code.user_prompt"]
    session, prompt_id = prompt_row["conversation_id"], prompt_row["turn_id"]
    assert {e.thread_id for e in events} == {session} and {e.provider for e in events} == {"claude_code"}
    kinds = [e.kind for e in events]
    assert kinds.count("thread") == 1 and kinds.count("turn_started") == 1 and kinds.count("turn_completed") == 1
    items = {e.item.type: e for e in events if e.item is not None}
    assert items["userMessage"].item_id == f"userprompt:{prompt_id}"
    assert items["userMessage"].item is not None and items["userMessage"].item.text == "Say hi to the crosssource test."
    answer = items["agentMessage"].item
    assert answer is not None and answer.text == reply_text("Say hi to the crosssource test.")
    [usage] = [e for e in events if e.kind == "usage"]
    assert usage.turn_id == prompt_id
    assert usage.usage is not None and usage.usage["inputTokens"] == 42 and usage.usage["outputTokens"] == 7
    # the interaction span has no prompt.id: its trace gives the turn, and it ends the turn
    [done] = [e for e in events if e.kind == "turn_completed"]
    assert done.turn_id == prompt_id and done.turn_status == "completed"
    assert kinds.index("turn_completed") == len(kinds) - 1, "a span counts at its end"


@pytest.mark.parametrize(
    ("output", "plain", "exit_code"),
    [
        ("Chunk ID: 4c7d2c\nWall time: 0.0000 seconds\nProcess exited with code 0\nOriginal token count: 2\n"
         "Output:\nhello-x\n", "hello-x\n", 0),
        ("Chunk ID: a\nWall time: 1.2 seconds\nProcess exited with code 2\nOutput:\nno file\n", "no file\n", 2),
        ("Chunk ID: a\nWall time: 1 seconds\nProcess running with session ID 7\nOutput:\npartial", "partial", None),
        ("plain text with no header\nOutput:\nx", "plain text with no header\nOutput:\nx", None),
        ("Chunk ID: a\nsomething else\nOutput:\nx", "Chunk ID: a\nsomething else\nOutput:\nx", None),
        ("", "", None),
    ],
)  # fmt: skip
def test_exec_output_is_unwrapped(output: str, plain: str, exit_code: int | None) -> None:
    assert mapping_codex.unwrap_exec_output(output) == (plain, exit_code)


def _by_name(name: str) -> OtelRecord:
    return next(r for r in fixture_records(CODEX) if r.name == name)


@pytest.mark.parametrize(
    ("change", "maps"),
    [
        ({"name": "codex.sse_event", "attributes": {"event.kind": "response.output_text.delta"}}, False),
        ({"name": "codex.turn_ttft"}, False),
        ({"signal": "metric", "name": "codex.thread.started"}, False),
        ({"signal": "span", "name": "turn/start"}, False),  # it teaches the turn, it is no content
        ({"provider": "other", "name": "something"}, False),
        ({"name": "codex.agent_response"}, True),
    ],
)
def test_only_content_records_are_relevant(change: dict[str, Any], maps: bool) -> None:
    record = _by_name("codex.agent_response")
    for name, value in change.items():
        setattr(record, name, value)
    assert mapping.relevant(record) is maps


def test_the_code_mode_wrapper_and_unknown_tools_stay_out() -> None:
    results = [r for r in fixture_records(CODEX) if r.name == "codex.tool_result"]
    wrapper = next(r for r in results if r.attributes["tool_name"] == "exec")
    assert mapping.to_events(wrapper, "T", "U") == []
    shell = next(r for r in results if r.attributes["tool_name"] == "exec_command")
    shell.attributes = {**shell.attributes, "tool_name": "web_search"}
    assert mapping.to_events(shell, "T", "U") == []


def test_a_prompt_waits_for_its_trace_to_name_the_turn() -> None:
    records = fixture_records(CODEX)
    logs = [r for r in records if r.signal == "log" and r.name != "codex.agent_response"]
    rest = [r for r in records if r not in logs]
    out: list[CaptureEvent] = []
    feeder = BaselineFeeder(out.extend)
    feeder.feed(logs)
    assert not [e for e in out if e.item is not None], "nothing in a turn can be placed yet"
    assert [e.kind for e in out] == ["thread"]
    assert feeder.pending > 0
    feeder.feed(rest)  # spans (turn/start, run_turn…) and the agent responses name the turns
    assert feeder.pending == 0
    prompts = [e for e in out if e.item is not None and e.item.type == "userMessage"]
    assert [e.turn_id for e in prompts] == [t for t in dict.fromkeys(e.turn_id for e in fed(records)) if t]
    # in order: within each placed batch events follow the records' time
    times = [e.emitted_at_ms or 0 for e in out if e.kind == "item_completed"]
    assert times == sorted(times)


def feeder_holding_the_shell_tools(now: list[float], out: list[CaptureEvent]) -> BaselineFeeder:
    """A feeder (TTL 30 s on the clock ``now``) holding the shell turn's two tool records for their turn.

    Those records live in a trace of their own; the spans that name its turn are left out.
    """
    feeder = BaselineFeeder(out.extend, clock=lambda: now[0], pending_ttl_s=30)
    records = fixture_records(CODEX)
    nested = {r.trace_id for r in records if r.name == "codex.tool_decision"}
    feeder.feed([r for r in records if not (r.signal == "span" and r.trace_id in nested)])
    assert feeder.pending == 2  # tool_decision and tool_result wait for a turn that no record will name
    return feeder


def assert_tools_placed_in_the_shell_turn(out: list[CaptureEvent]) -> None:
    tool_events = [e for e in out if e.item is not None and e.item.type == "commandExecution"]
    shell_turn = next(e.turn_id for e in out if e.item is not None and e.item.type == "agentMessage"
                      and "command" in (e.item.text or ""))  # fmt: skip
    assert len(tool_events) == 2 and {e.turn_id for e in tool_events} == {shell_turn}


def test_held_records_expire_into_the_turn_running_at_their_time() -> None:
    now = [0.0]
    out: list[CaptureEvent] = []
    feeder = feeder_holding_the_shell_tools(now, out)
    now[0] = 29
    assert feeder.expire() == 0
    now[0] = 31
    assert feeder.expire() == 2
    assert_tools_placed_in_the_shell_turn(out)
    assert feeder.counters.expired == 2


def test_a_feeder_about_to_end_lets_every_held_record_go_as_if_its_time_were_up() -> None:
    """The decoder process stops (quiet, or the bridge stops): what it held is placed now, not lost with it."""
    now = [0.0]
    out: list[CaptureEvent] = []
    feeder = feeder_holding_the_shell_tools(now, out)
    now[0] = 1  # far from the TTL
    assert feeder.expire() == 0 and feeder.pending == 2
    assert feeder.expire(everything=True) == 2 and feeder.pending == 0
    assert_tools_placed_in_the_shell_turn(out)
    assert feeder.expire(everything=True) == 0  # nothing is let go twice


def _claude_tool(name: str, sequence: int, **attrs: Any) -> OtelRecord:
    """A Claude tool record shaped like claude_print.json's (synthetic: the fake Messages API makes no tool calls)."""
    base = next(r for r in fixture_records(CLAUDE) if r.name == "claude_code.api_request")
    attributes = {k: v for k, v in base.attributes.items() if k in ("session.id", "prompt.id", "user.id")}
    attributes.update({"event.name": name.split(".", 1)[1], "event.sequence": sequence, **attrs})
    return OtelRecord(
        dedup_key=f"claude:{base.conversation_id}:{sequence}", signal="log", provider="claude_code", name=name,
        time_ns=(base.time_ns or 0) + sequence, conversation_id=base.conversation_id, turn_id=base.turn_id,
        call_id=attrs.get("tool_use_id"), sequence=sequence, trace_id=base.trace_id, attributes=attributes,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("tool", "params", "item_type", "command"),
    [
        ("Bash", '{"bash_command": "ls -la"}', "commandExecution", "ls -la"),
        ("Edit", '{"file_path": "/WORKSPACE/a.py"}', "fileChange", None),
        ("WebFetch", '{"url": "http://127.0.0.1/"}', "dynamicToolCall", None),
    ],
)
def test_claude_tool_records_become_one_item(tool: str, params: str, item_type: str, command: str | None) -> None:
    decision = _claude_tool(
        "claude_code.tool_decision", 10, tool_name=tool, decision="accept", source="config", tool_use_id="toolu_1"
    )
    result = _claude_tool(
        "claude_code.tool_result", 11, tool_name=tool, success="true", duration_ms="40", tool_parameters=params,
        tool_use_id="toolu_1",
    )  # fmt: skip
    events = fed([decision, result])
    started, completed = events
    assert (started.kind, completed.kind) == ("item_started", "item_completed")
    assert started.item_id == completed.item_id == "toolu_1"
    assert started.usage == {"toolDecision": {"decision": "accept", "source": "config"}}
    assert completed.item is not None and completed.item.type == item_type and completed.item.status == "completed"
    assert completed.item.command == command
    assert completed.usage is not None and completed.usage["durationMs"] == 40
    rejected = _claude_tool("claude_code.tool_decision", 12, tool_name=tool, decision="reject", source="user")
    [declined] = fed([rejected])
    assert declined.item is not None and declined.item.status == "declined" and declined.item_id == "tool:12"


@pytest.mark.parametrize("fixture", [CODEX, CLAUDE], ids=["codex", "claude"])
def test_what_the_decoder_hands_on_maps_exactly_as_the_whole_records(fixture: dict[str, Any]) -> None:
    """The decoder process feeds the feeder only ``mapping.for_baseline`` of each stored record (all but
    the resource of a relevant one, the ids of one that only tells its trace's thread and turn, nothing of
    the rest); the feeder must make the very same events of that as of the whole records."""
    resource = {"service.name": "codex_exec", "service.version": "0.169.0", "host.name": "vm"}  # as exporters send
    records = [replace(r, resource=resource) for r in fixture_records(fixture)]
    handed = [kept for r in records if (kept := mapping.for_baseline(r)) is not None]
    ids_only = [kept for r, kept in zip(records, map(mapping.for_baseline, records), strict=True)
                if kept is not None and not mapping.relevant(r)]  # fmt: skip
    assert handed and not any(r.resource for r in handed)
    if fixture is CODEX:
        assert ids_only and all(not r.attributes for r in ids_only)  # the fixture has them
    assert fed(handed) == fed(records)
