"""The real codex app-server (0.169.0, fenced) driven through whole turns by the fake model.

These pin the stream shapes the capture code relies on (docs/codex-stream-notes.md):
a chat turn, a shell turn whose approval is accepted and one whose approval is
declined, and a turn whose model calls all fail.
"""

from __future__ import annotations

from typing import Any

import pytest

from bridge.drill.fake_model import (
    CHAT_SUMMARY,
    USAGE,
    FakeModel,
    bearer_fingerprint,
    chat_reply,
    latest_user_text,
    shell_reply,
    tool_output_after_prompt,
)
from bridge.peers import fence

pytestmark = pytest.mark.peer

Message = dict[str, Any]


def turn_messages(cx: Any, turn_id: str) -> list[Message]:
    """Notifications and server requests that belong to ``turn_id``, in arrival order."""
    out = []
    for m in cx.messages:
        params = m.get("params") or {}
        if params.get("turnId") == turn_id or (params.get("turn") or {}).get("id") == turn_id:
            out.append(m)
    return out


def completed_items(messages: list[Message]) -> list[Message]:
    return [m["params"]["item"] for m in messages if m.get("method") == "item/completed"]


def only(items: list[Message], item_type: str) -> Message:
    found = [i for i in items if i["type"] == item_type]
    assert len(found) == 1, f"expected one {item_type} item, got {found}"
    return found[0]


def deltas(messages: list[Message], method: str, item_id: str) -> str:
    return "".join(
        m["params"]["delta"] for m in messages if m.get("method") == method and m["params"]["itemId"] == item_id
    )


def assert_wire_shape(cx: Any) -> None:
    """codex frames carry no jsonrpc field; every notification carries emittedAtMs."""
    assert cx.messages
    for m in cx.messages:
        assert "jsonrpc" not in m, m
        if "method" in m and "id" not in m:
            assert isinstance(m.get("emittedAtMs"), int), m


async def test_chat_turn(codex_env: Any, fake_model: FakeModel, spawn_codex: Any) -> None:
    async with spawn_codex(codex_env) as cx:
        await cx.start_session()
        thread_id = await cx.start_thread(codex_env.workdir)
        done = await cx.run_turn(thread_id, "Say hi [[scenario:chat]]")

    turn = done["params"]["turn"]
    assert done["params"]["threadId"] == thread_id
    assert turn["status"] == "completed"
    assert turn["error"] is None
    assert_wire_shape(cx)

    messages = turn_messages(cx, turn["id"])
    items = completed_items(messages)
    assert [i["type"] for i in items] == ["userMessage", "reasoning", "agentMessage"]
    agent = only(items, "agentMessage")
    assert agent["text"] == chat_reply("Say hi")
    assert deltas(messages, "item/agentMessage/delta", agent["id"]) == agent["text"]
    reasoning = only(items, "reasoning")
    assert reasoning["summary"] == [CHAT_SUMMARY]
    assert reasoning["content"] == ["User said: Say hi"]
    assert deltas(messages, "item/reasoning/summaryTextDelta", reasoning["id"]) == CHAT_SUMMARY
    assert deltas(messages, "item/reasoning/textDelta", reasoning["id"]) == "User said: Say hi"
    user = only(items, "userMessage")
    assert user["content"][0]["text"] == "Say hi [[scenario:chat]]"

    # Every item notification carries the flat ids.
    for m in messages:
        if m["method"].startswith("item/"):
            assert m["params"]["threadId"] == thread_id
            assert m["params"]["turnId"] == turn["id"]

    usage = [m for m in messages if m["method"] == "thread/tokenUsage/updated"]
    assert len(usage) == 1
    last = usage[0]["params"]["tokenUsage"]["last"]
    assert last["totalTokens"] == USAGE["total_tokens"]
    assert last["inputTokens"] == USAGE["input_tokens"]
    assert last["cachedInputTokens"] == USAGE["input_tokens_details"]["cached_tokens"]
    assert last["reasoningOutputTokens"] == USAGE["output_tokens_details"]["reasoning_tokens"]

    # Order around the turn: active → turn/started → … → idle → turn/completed.
    notes = cx.notifications()
    methods = [m["method"] for m in notes]
    statuses = [m["params"]["status"]["type"] for m in cx.notifications("thread/status/changed")]
    assert statuses == ["active", "idle"]
    assert methods.index("thread/status/changed") < methods.index("turn/started")
    end = methods.index("turn/completed")
    assert methods[end - 1] == "thread/status/changed"
    assert notes[end - 1]["params"]["status"] == {"type": "idle"}
    assert methods.index("thread/tokenUsage/updated") < end - 1

    requests = fake_model.responses()
    assert len(requests) == 1
    assert requests[0].bearer_sha256 == bearer_fingerprint(codex_env.api_key)
    assert requests[0].body["stream"] is True
    assert latest_user_text(requests[0].body) == "Say hi [[scenario:chat]]"


async def _shell_turn(codex_env: Any, spawn_codex: Any, cmd: str, decision: str) -> tuple[Any, Message, str]:
    async with spawn_codex(codex_env) as cx:
        cx.on_server_request = lambda m: {"decision": decision} if m["method"].endswith("/requestApproval") else None
        await cx.start_session()
        thread_id = await cx.start_thread(codex_env.workdir, approval_policy="untrusted")
        done = await cx.run_turn(thread_id, f"Run it [[scenario:shell:{cmd}]]")
    return cx, done, thread_id


def _approval_and_command(cx: Any, turn_id: str, cmd: str) -> tuple[Message, Message]:
    messages = turn_messages(cx, turn_id)
    approvals = cx.server_requests("item/commandExecution/requestApproval")
    assert len(approvals) == 1
    approval = approvals[0]
    command = only(completed_items(messages), "commandExecution")
    assert approval["params"]["itemId"] == command["id"]
    assert approval["params"]["turnId"] == turn_id
    assert cmd in approval["params"]["command"]
    assert cmd in command["command"]
    started = [
        m for m in messages if m["method"] == "item/started" and m["params"]["item"]["type"] == "commandExecution"
    ]
    assert started and started[0]["params"]["item"]["status"] == "inProgress"
    resolved = cx.notifications("serverRequest/resolved")
    assert [r["params"]["requestId"] for r in resolved] == [approval["id"]]
    assert cx.messages.index(approval) < cx.messages.index(resolved[0])
    flags = [m["params"]["status"].get("activeFlags") for m in cx.notifications("thread/status/changed")]
    assert ["waitingOnApproval"] in flags
    return approval, command


async def test_shell_turn_approval_accepted(codex_env: Any, fake_model: FakeModel, spawn_codex: Any) -> None:
    cmd = "echo capture-bridge-ok; echo ok > accepted.txt"
    cx, done, _thread_id = await _shell_turn(codex_env, spawn_codex, cmd, "accept")
    turn = done["params"]["turn"]
    assert turn["status"] == "completed"
    assert_wire_shape(cx)

    _approval, command = _approval_and_command(cx, turn["id"], cmd)
    assert command["status"] == "completed"
    assert command["exitCode"] == 0
    assert "capture-bridge-ok" in command["aggregatedOutput"]
    assert (codex_env.workdir / "accepted.txt").read_text() == "ok\n"

    # The fake: a custom tool call, then the follow-up carrying its output.
    first, second = fake_model.responses()
    assert (first.scenario, second.scenario) == ("shell", "shell-followup")
    output = tool_output_after_prompt(second.body["input"])
    assert output is not None and "capture-bridge-ok" in output
    agent = only(completed_items(turn_messages(cx, turn["id"])), "agentMessage")
    assert agent["text"] == shell_reply(output)
    order = [i["type"] for i in completed_items(turn_messages(cx, turn["id"]))]
    assert order == ["userMessage", "reasoning", "commandExecution", "reasoning", "agentMessage"]


async def test_shell_turn_approval_declined(codex_env: Any, fake_model: FakeModel, spawn_codex: Any) -> None:
    cmd = "echo nope > declined.txt"
    cx, done, _thread_id = await _shell_turn(codex_env, spawn_codex, cmd, "decline")
    turn = done["params"]["turn"]
    assert turn["status"] == "completed"  # decline lets the turn go on; only "cancel" interrupts it

    _approval, command = _approval_and_command(cx, turn["id"], cmd)
    assert command["status"] == "declined"
    assert command["exitCode"] is None
    assert command["aggregatedOutput"] is None
    assert not (codex_env.workdir / "declined.txt").exists()
    assert [r.scenario for r in fake_model.responses()] == ["shell", "shell-followup"]
    assert not cx.notifications("item/commandExecution/outputDelta")


async def test_error_turn(codex_env: Any, fake_model: FakeModel, spawn_codex: Any) -> None:
    async with spawn_codex(codex_env) as cx:
        await cx.start_session()
        thread_id = await cx.start_thread(codex_env.workdir)
        done = await cx.run_turn(thread_id, "Fail please [[scenario:error]]")

    turn = done["params"]["turn"]
    assert turn["status"] == "failed"
    assert turn["error"]["message"]
    assert turn["error"]["codexErrorInfo"] == "internalServerError"
    errors = [m["params"] for m in cx.notifications("error")]
    assert [e["willRetry"] for e in errors][-1] is False
    assert any(e["willRetry"] for e in errors)
    assert all(e["threadId"] == thread_id and e["turnId"] == turn["id"] for e in errors)
    assert errors[-1]["error"] == turn["error"]
    assert not [i for i in completed_items(turn_messages(cx, turn["id"])) if i["type"] == "agentMessage"]
    statuses = [m["params"]["status"]["type"] for m in cx.notifications("thread/status/changed")]
    assert statuses[-1] == "systemError"
    # request_max_retries = 1 and stream_max_retries = 1: two attempts, each retried once.
    assert [r.status for r in fake_model.responses()] == [500, 500, 500, 500]


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (['model="before-model"'], [], "before-model"),
        ([], ['model="after-model"'], "after-model"),
        (['model="before-model"'], ['model="after-model"'], "after-model"),
    ],
)
async def test_config_overrides_before_or_after_app_server(
    codex_env: Any, spawn_codex: Any, before: list[str], after: list[str], expected: str
) -> None:
    """``-c`` works on either side of ``app-server``; the one after it wins when both are given."""
    pre = [a for v in before for a in ("-c", v)]
    post = [a for v in after for a in ("-c", v)]
    async with spawn_codex(codex_env, extra_args=pre, app_server_args=post) as cx:
        await cx.start_session()
        result = await cx.call("thread/start", {"cwd": str(codex_env.workdir)})
    assert result["thread"]["model"] == expected
    assert result["model"] == expected


async def test_refuses_to_spawn_outside_the_fence(
    codex_env: Any, spawn_codex: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fence, "isolated", lambda: False)
    with pytest.raises(pytest.fail.Exception, match="loopback-only fence"):
        async with spawn_codex(codex_env):
            raise AssertionError("codex must not start outside the fence")
    assert not (codex_env.home / "codex-stderr.log").exists()
