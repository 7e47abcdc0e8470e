"""Issue 9 acceptance: the bridge follows the user's own sessions on a real ``codex app-server daemon``.

Fenced; a real daemon in its own temp CODEX_HOME, the project's fake model, a
second client of the daemon acting as the user (as the TUI would). The daemon
and its self-update process are killed by the pids they record, always.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from bridge.drill.fake_model import FakeModel, chat_reply
from bridge.sidecar.attach import OBSERVER_CLIENT_NAME
from tests.attach.support import (
    LIVE,
    TRANSITION,
    Message,
    attached_bridge,
    captured_when,
    codex_daemon,
    item_ids,
    live,
    user_client,
)
from tests.support.host import Host, HostError

pytestmark = pytest.mark.peer


def live_completed(host: Host, thread_id: str) -> dict[str, Message]:
    """Final items as the bridge pushed them to the host (item/completed payloads)."""
    out: dict[str, Message] = {}
    for p in live(host):
        if p.get("type") == "SessionDelta" and p["eventType"] == "item/completed" and p["threadId"] == thread_id:
            out[p["payload"]["item"]["id"]] = p["payload"]["item"]
    return out


def assert_each_event_once(host: Host) -> None:
    keys = [p["key"] for p in live(host) if p.get("type") == "SessionDelta"]
    assert len(keys) == len(set(keys)), "an event was pushed twice"


def assert_matches_user_view(captured: Message, user_turns: list[Message]) -> None:
    """The captured thread has every turn and item the daemon reports, once, with the same content.

    (A back-filled turn is stored after the live ones: turns are matched by id, not position.)
    """
    turns = {t["turnId"]: t for t in captured["turns"]}
    assert len(turns) == len(captured["turns"]), "duplicate turns"
    assert sorted(turns) == sorted(t["id"] for t in user_turns)
    for want in user_turns:
        got = turns[want["id"]]
        assert got["status"] == want["status"]
        items = {i["itemId"]: i for i in got["items"]}
        assert len(items) == len(got["items"]), "duplicate items"
        assert sorted(items) == sorted(i["id"] for i in want["items"])
        for item in want["items"]:
            mine = items[item["id"]]
            assert mine["type"] == item["type"]
            if item["type"] == "agentMessage":
                assert mine["text"] == item["text"]
            if item["type"] == "commandExecution":
                assert mine["command"] == item["command"]
                assert mine["output"] == item.get("aggregatedOutput")
                assert mine["exitCode"] == item.get("exitCode")
            assert mine["source"] == "app_server_stream"


async def test_live_capture_of_the_users_turns_with_the_users_approval(tmp_path: Path, fake_model: FakeModel) -> None:
    async with (
        codex_daemon(tmp_path / "peer", fake_model.base_url) as daemon,
        attached_bridge(tmp_path, daemon, healthy=False) as host,  # before the user logs in
    ):
        status = await host.call("get_codex_app_server_status")
        assert status["connection"] == "attach" and status["pid"] is None
        info = await host.call("bridge_info")
        assert info["codex"]["connection"] == "attach"
        assert info["codex"]["path"] == str(daemon.socket_path)

        # The bridge initialized first, yet the user's client is the daemon's originator.
        async with user_client(daemon, "user_tui") as user:
            await user.start_session()
            assert user.user_agent.startswith("user_tui/"), user.user_agent
            assert OBSERVER_CLIENT_NAME not in user.user_agent
            thread_id = await user.start_thread(daemon.cx.workdir, approval_policy="untrusted")

            # turn 1: chat (followed when it turns active; its start is back-filled)
            turn1 = await user.start_turn(thread_id, "[[scenario:chat]] first")
            await user.wait_turn(turn1)
            await host.wait_for(LIVE, lambda p: p.get("eventType") == "turn/completed" and p["turnId"] == turn1)

            # turn 2: a command that needs approval; only the user's client answers, after a while
            answered: list[Message] = []

            def on_request(message: Message) -> None:
                answered.append(message)

            user.on_server_request = on_request
            since = len(host.notifications)
            turn2 = await user.start_turn(thread_id, "[[scenario:shell:echo approved-by-user]] run it")
            request = await host.wait_for(LIVE, lambda p: p.get("type") == "ApprovalRequest", since=since)
            assert request["observed"] is True and request["decisionToken"] is None
            assert request["options"] == [] and "echo approved-by-user" in (request["command"] or "")
            assert [p["requestId"] for p in await host.call("list_pending_approvals")] == [request["requestId"]]
            with pytest.raises(HostError) as refused:
                await host.call(
                    "codex_app_server_submit_approval",
                    {"requestId": request["requestId"], "threadId": thread_id, "decisionToken": "x",
                     "decision": "decline"},
                )  # fmt: skip
            assert refused.value.code == -32017
            await anyio.sleep(1.5)  # had the bridge answered (even -32601), the turn would have moved on
            [asked] = answered
            assert not any(m.get("method") == "serverRequest/resolved" for m in user.messages[-50:]), (
                "resolved before the user answered"
            )
            await user.send({"id": asked["id"], "result": {"decision": "accept"}})
            done2 = await user.wait_turn(turn2)
            result = await host.wait_for(LIVE, lambda p: p.get("type") == "ApprovalResult", since=since)
            assert result["decidedBy"] == "user" and result["requestId"] == request["requestId"]
            await host.wait_for(LIVE, lambda p: p.get("eventType") == "turn/completed" and p["turnId"] == turn2)

            # turn 3: chat again, all of it live
            since3 = len(host.notifications)
            turn3 = await user.start_turn(thread_id, "[[scenario:chat]] third")
            await user.wait_turn(turn3)
            await host.wait_for(
                LIVE, lambda p: p.get("eventType") == "turn/completed" and p["turnId"] == turn3, since=since3
            )

            user_turns = await user.turns(thread_id)
            captured = await captured_when(
                host, thread_id, lambda t: len(item_ids(t)) == sum(len(u["items"]) for u in user_turns)
            )
            # the host's refusals in attach mode
            for method, params in [
                ("codex_app_server_thread_start", {"cwd": str(daemon.cx.workdir)}),
                ("codex_app_server_turn_start", {"threadId": thread_id, "text": "hi"}),
                ("codex_app_server_turn_interrupt", {"threadId": thread_id, "turnId": turn3}),
                ("codex_app_server_account_login_start", {"authMode": "apiKey", "apiKey": "sk-x"}),
                ("codex_app_server_account_logout", None),
            ]:
                with pytest.raises(HostError) as no:
                    await host.call(method, params)
                assert no.value.code == -32017, method
            listed = await host.call("codex_app_server_thread_list", {})
            assert thread_id in [t["id"] for t in listed["data"]]
            status = await host.call("get_codex_app_server_status")
            assert status["followedThreadIds"] == [thread_id]

            # stop only disconnects: the daemon and the user's session go on
            stopped = await host.call("stop_codex_app_server")
            assert stopped["state"] == "inactive"
            read = await user.call("thread/read", {"threadId": thread_id})
            assert read["thread"]["originator"] == "user_tui"

    assert done2["params"]["turn"]["status"] == "completed"
    assert_matches_user_view(captured, user_turns)
    assert_each_event_once(host)
    [command] = [i for t in captured["turns"] for i in t["items"] if i["type"] == "commandExecution"]
    assert "approved-by-user" in (command["output"] or "") and command["exitCode"] == 0
    # item for item: what the host saw live of turn 3 is exactly what the user's client saw
    mine = live_completed(host, thread_id)
    theirs = user.completed_items(thread_id)
    turn3_items = [i["id"] for i in user_turns[2]["items"]]
    assert turn3_items and all(mine[i] == theirs[i] for i in turn3_items)
    assert captured["turns"][2]["items"][-1]["text"] == chat_reply("third")
    assert [i["itemId"] for i in captured["turns"][2]["items"]] == turn3_items


async def test_late_attach_mid_turn_is_back_filled_without_duplicates(tmp_path: Path, fake_model: FakeModel) -> None:
    async with codex_daemon(tmp_path / "peer", fake_model.base_url) as daemon, user_client(daemon) as user:
        await user.start_session()
        thread_id = await user.start_thread(daemon.cx.workdir)
        early = await user.start_turn(thread_id, "[[scenario:chat]] before the bridge")
        await user.wait_turn(early)
        turn_id = await user.start_turn(thread_id, "[[delay:400]] [[scenario:chat]] while the bridge attaches")
        await user.wait_for(lambda m: m.get("method") == "item/reasoning/summaryTextDelta", timeout=60)
        async with attached_bridge(tmp_path, daemon) as host:
            mid = await user.call("thread/read", {"threadId": thread_id})
            assert mid["thread"]["status"]["type"] == "active", "the bridge attached after the turn ended"
            await user.wait_turn(turn_id)
            user_turns = await user.turns(thread_id)
            want = sum(len(t["items"]) for t in user_turns)
            captured = await captured_when(host, thread_id, lambda t: len(item_ids(t)) >= want)
            await anyio.sleep(1.0)  # anything late would show up now
            again = await host.call("get_captured_thread", {"threadId": thread_id})
            dedupe = await host.call("get_codex_stream_dedupe_log", {"limit": 1000})
            status = await host.call("get_codex_app_server_status")
    assert status["followedThreadIds"] == [thread_id]
    assert_matches_user_view(captured, user_turns)
    assert item_ids(again) == item_ids(captured)
    assert sorted(t["status"] for t in again["turns"]) == ["completed", "completed"]
    assert_each_event_once(host)
    assert any(d["decision"] == "duplicate" for d in dedupe), "the back-fill met what was captured live"
    streamed = [p for p in live(host) if p.get("eventType") == "item/agentMessage/delta" and p["turnId"] == turn_id]
    assert streamed, "the rest of the running turn arrived live"


async def test_daemon_killed_and_restarted_recovers_without_host_commands(
    tmp_path: Path, fake_model: FakeModel
) -> None:
    async with codex_daemon(tmp_path / "peer", fake_model.base_url) as daemon:
        async with user_client(daemon) as first_user:
            await first_user.start_session()  # the login is kept in CODEX_HOME across daemon restarts
        async with attached_bridge(tmp_path, daemon) as host:
            await host.wait_for(TRANSITION, lambda p: p["toMode"] == "HYBRID_ACTIVE", timeout=30)
            since = len(host.notifications)
            await daemon.kill()
            degraded = await host.wait_for(
                TRANSITION, lambda p: p["toMode"] == "DEGRADED_STREAMING", timeout=30, since=since
            )
            status = await host.call("get_codex_app_server_status")
            assert status["streamHealthy"] is False and status["state"] in ("starting", "inactive")
            assert status["connection"] == "attach"
            since = len(host.notifications)
            await daemon.start()
            await host.wait_for(TRANSITION, lambda p: p["toMode"] == "HYBRID_ACTIVE", timeout=90, since=since)
            # the new daemon's threads are followed again, with no host command
            async with user_client(daemon) as user:
                await user.start_session()
                thread_id = await user.start_thread(daemon.cx.workdir)
                turn_id = await user.start_turn(thread_id, "[[scenario:chat]] after the restart")
                await user.wait_turn(turn_id)
                await host.wait_for(LIVE, lambda p: p.get("eventType") == "turn/completed" and p["turnId"] == turn_id)
                user_turns = await user.turns(thread_id)
                captured = await captured_when(
                    host, thread_id, lambda t: len(item_ids(t)) == sum(len(u["items"]) for u in user_turns)
                )
            final = await host.call("get_codex_app_server_status")
    assert degraded["fromMode"] == "HYBRID_ACTIVE"
    assert final["state"] == "running" and final["streamHealthy"]
    assert_matches_user_view(captured, user_turns)
