"""Issue 5 acceptance: the real codex streams turns through the bridge into the store and to the host."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bridge.drill.fake_model import FakeModel, chat_reply
from tests.stream.support import LIVE, completed_items, live_events, run_turn, streaming_bridge

pytestmark = pytest.mark.peer


def assert_captured_equals_stream(thread: dict[str, Any], live: dict[str, dict[str, Any]]) -> None:
    captured = {i["itemId"]: i for t in thread["turns"] for i in t["items"]}
    assert list(captured) == list(live), "same items, same order"
    for item_id, item in live.items():
        got = captured[item_id]
        assert got["type"] == item["type"]
        assert got["status"] in ("completed", "declined", "failed", item.get("status"))
        if item["type"] == "agentMessage":
            assert got["text"] == item["text"]
        if item["type"] == "commandExecution":
            assert got["output"] == item.get("aggregatedOutput")
            assert got["exitCode"] == item.get("exitCode")
            assert got["command"] == item.get("command")
        assert got["source"] == "app_server_stream"
        assert got["seenBy"] == ["app_server_stream"]


def assert_seq_has_no_gap(host: Any) -> None:
    seqs = [p["seq"] for _, p in host.notifications]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "seq increases by one, no gap"


def assert_each_event_once(host: Any) -> None:
    seen = set()
    for p in live_events(host):
        if p.get("type") != "SessionDelta":
            continue
        assert p["key"] not in seen, f"emitted twice: {p['key']}"
        seen.add(p["key"])


async def test_chat_turn_is_captured_item_for_item(tmp_path: Path, fake_model: FakeModel) -> None:
    async with streaming_bridge(tmp_path, fake_model.base_url) as (host, thread_id):
        await run_turn(host, thread_id, "[[scenario:chat]] tell me something")
        thread = await host.call("get_captured_thread", {"threadId": thread_id})
        listed = await host.call("list_captured_threads")
    [turn] = thread["turns"]
    assert turn["status"] == "completed"
    assert turn["usage"] is not None
    types = [i["type"] for i in turn["items"]]
    assert types[0] == "userMessage" and "reasoning" in types and types[-1] == "agentMessage"
    assert turn["items"][-1]["text"] == chat_reply("tell me something")
    assert_captured_equals_stream(thread, completed_items(host, thread_id))
    assert_seq_has_no_gap(host)
    assert_each_event_once(host)
    deltas = [p for p in live_events(host) if p.get("eventType") == "item/agentMessage/delta"]
    assert [d["sequenceId"] for d in deltas] == list(range(1, len(deltas) + 1))
    assert listed[0]["threadId"] == thread_id


async def approve_next(host: Any, decision: str, since: int) -> dict[str, Any]:
    request = await host.wait_for(LIVE, lambda p: p.get("type") == "ApprovalRequest", timeout=60, since=since)
    pending = await host.call("list_pending_approvals")
    assert [p["requestId"] for p in pending] == [request["requestId"]]
    result: dict[str, Any] = await host.call(
        "codex_app_server_submit_approval",
        {"requestId": request["requestId"], "threadId": request["threadId"],
         "decisionToken": request["decisionToken"], "decision": decision},
    )  # fmt: skip
    return {"request": request, "result": result}


async def test_command_turns_with_accepted_declined_and_timed_out_approvals(
    tmp_path: Path, fake_model: FakeModel
) -> None:
    async with streaming_bridge(tmp_path, fake_model.base_url, approvals={"timeoutMs": 3000}) as (host, thread_id):
        import anyio

        # accepted by the host
        since = len(host.notifications)
        async with anyio.create_task_group() as tg:
            tg.start_soon(run_turn, host, thread_id, "[[scenario:shell:echo accepted-run]] run it")
            accepted = await approve_next(host, "accept", since)
        assert accepted["result"]["approved"] is True and accepted["result"]["decidedBy"] == "user"
        assert accepted["request"]["kind"] == "commandExecution"
        assert "echo accepted-run" in (accepted["request"]["command"] or "")

        # a replayed token is refused
        from tests.support.host import HostError

        with pytest.raises(HostError) as replay:
            await host.call(
                "codex_app_server_submit_approval",
                {"requestId": accepted["request"]["requestId"], "threadId": thread_id,
                 "decisionToken": accepted["request"]["decisionToken"], "approved": True},
            )  # fmt: skip
        assert replay.value.code == -32031 and replay.value.data["reason"] == "replayed"

        # declined by the host (the existing host's approved: false)
        since = len(host.notifications)
        async with anyio.create_task_group() as tg:
            tg.start_soon(run_turn, host, thread_id, "[[scenario:shell:echo declined-run]] run it")
            request = await host.wait_for(LIVE, lambda p: p.get("type") == "ApprovalRequest", timeout=60, since=since)
            declined = await host.call(
                "codex_app_server_submit_approval",
                {"requestId": request["requestId"], "threadId": thread_id, "decisionToken": request["decisionToken"],
                 "approved": False},
            )  # fmt: skip
        assert declined["decision"] == "decline" and declined["approved"] is False

        # nobody answers: the bridge declines after approvals.timeoutMs
        since = len(host.notifications)
        await run_turn(host, thread_id, "[[scenario:shell:echo timeout-run]] run it")
        timed_out = await host.wait_for(
            LIVE, lambda p: p.get("type") == "ApprovalResult" and p["decidedBy"] == "system", since=since
        )
        assert timed_out["decision"] == "decline"
        late = next(p for _, p in host.notifications[since:] if p.get("type") == "ApprovalRequest")
        with pytest.raises(HostError) as too_late:
            await host.call(
                "codex_app_server_submit_approval",
                {"requestId": late["requestId"], "threadId": thread_id, "decisionToken": late["decisionToken"],
                 "decision": "accept"},
            )  # fmt: skip
        assert too_late.value.data["reason"] == "already_decided"
        thread = await host.call("get_captured_thread", {"threadId": thread_id})
        status = await host.call("get_codex_app_server_status")

    assert status["state"] == "running"
    assert [t["status"] for t in thread["turns"]] == ["completed", "completed", "completed"]
    commands = [i for t in thread["turns"] for i in t["items"] if i["type"] == "commandExecution"]
    assert len(commands) == 3
    assert "accepted-run" in (commands[0]["output"] or "") and commands[0]["exitCode"] == 0
    assert commands[1]["status"] == "declined" and not (commands[1]["output"] or "").count("declined-run\n")
    assert commands[2]["status"] == "declined"
    assert_captured_equals_stream(thread, completed_items(host, thread_id))
    assert_seq_has_no_gap(host)
    assert_each_event_once(host)


async def test_model_error_turn_is_captured_as_failed(tmp_path: Path, fake_model: FakeModel) -> None:
    async with streaming_bridge(tmp_path, fake_model.base_url) as (host, thread_id):
        await run_turn(host, thread_id, "[[scenario:error]] this will fail")
        thread = await host.call("get_captured_thread", {"threadId": thread_id})
    [turn] = thread["turns"]
    assert turn["status"] == "failed"
    assert turn["error"]
    assert_captured_equals_stream(thread, completed_items(host, thread_id))
    assert_seq_has_no_gap(host)


async def test_snapshot_reconciles_without_duplicates(tmp_path: Path, fake_model: FakeModel) -> None:
    async with streaming_bridge(tmp_path, fake_model.base_url) as (host, thread_id):
        await run_turn(host, thread_id, "[[scenario:chat]] once")
        before = await host.call("get_captured_thread", {"threadId": thread_id})
        snapshot = await host.call(
            "codex_app_server_request_thread_snapshot", {"threadId": thread_id, "workDoneToken": "snap"}
        )
        answered = len(host.frames)  # the answer is the last frame so far
        after = await host.call("get_captured_thread", {"threadId": thread_id})
        log = await host.call("get_codex_stream_dedupe_log", {"limit": 1000})
    assert snapshot["id"] == thread_id and len(snapshot["turns"]) == 1
    assert [i["itemId"] for t in after["turns"] for i in t["items"]] == [
        i["itemId"] for t in before["turns"] for i in t["items"]
    ]
    assert any(d["decision"] == "duplicate" for d in log)
    # Work-done progress (docs/protocol.md §1.1): begin, reports, end, all before the answer.
    progress = [
        (i, f["params"]["value"]["kind"])
        for i, f in enumerate(host.frames)
        if isinstance(f, dict) and f.get("method") == "$/progress" and f["params"]["token"] == "snap"
    ]
    kinds = [kind for _, kind in progress]
    assert kinds[0] == "begin" and kinds[-1] == "end" and set(kinds[1:-1]) == {"report"} and len(kinds) >= 3
    assert all(i < answered for i, _ in progress)


async def test_resume_with_a_token_reports_progress_and_keeps_the_token_from_codex(
    tmp_path: Path, fake_model: FakeModel
) -> None:
    async with streaming_bridge(tmp_path, fake_model.base_url) as (host, thread_id):
        await run_turn(host, thread_id, "[[scenario:chat]] once")
        resumed = await host.call("codex_app_server_thread_resume", {"threadId": thread_id, "workDoneToken": 9})
        answered = len(host.frames)
        status = await host.call("get_codex_app_server_status")
    assert resumed["thread"]["id"] == thread_id and len(resumed["thread"]["turns"]) == 1
    assert thread_id in status["followedThreadIds"]
    progress = [
        (i, f["params"]["value"])
        for i, f in enumerate(host.frames)
        if isinstance(f, dict) and f.get("method") == "$/progress" and f["params"]["token"] == 9
    ]
    values = [v for _, v in progress]
    assert [v["kind"] for v in values] == ["begin", "report", "end"]
    assert values[1]["cancellable"] is False  # codex has been asked: the resume completes
    assert values[2]["message"] == "resumed; turns: 1"
    assert all(i < answered for i, _ in progress)
