"""Every recorded fixture replayed through a real bridge, without codex, with asserted results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bridge.drill.fake_model import chat_reply
from bridge.transcript.replay import replay
from bridge.transcript.report import render_json, render_text
from tests.transcript.codex_fixtures import API_KEY
from tests.transcript.support import FIXTURES, SCENARIOS, contains, run_cli

HYBRID = "HYBRID_ACTIVE"


async def replayed(name: str, **kwargs: Any) -> dict[str, Any]:
    result = await replay(FIXTURES / f"{name}.jsonl", **kwargs)
    assert result.complete, result.problems
    return result.report


def items_of(thread: dict[str, Any]) -> list[tuple[str, str]]:
    return [(item["type"], item["status"]) for turn in thread["turns"] for item in turn["items"]]


def test_the_corpus_is_there_and_secret_free() -> None:
    for name in SCENARIOS:
        for path in (FIXTURES / f"{name}.jsonl", FIXTURES / f"{name}.live.json"):
            text = path.read_text()
            assert API_KEY not in text and "sk-test" not in text, path
    assert (FIXTURES / "README.md").is_file()


@pytest.mark.parametrize("name", SCENARIOS)
async def test_a_fixture_replays_to_what_the_live_bridge_captured(name: str) -> None:
    report = await replayed(name)
    live = json.loads((FIXTURES / f"{name}.live.json").read_text())
    contains(live, report["threads"])
    assert report["replay"]["hostErrors"] == []
    assert all(d["decision"] == "accepted" for d in report["dedup"])  # one source: nothing to decide against
    assert API_KEY not in render_json(report) + render_text(report)


@pytest.mark.parametrize("name", SCENARIOS)
async def test_the_host_side_replays_with_the_recorded_answers(name: str) -> None:
    report = await replayed(name, host_side=True)
    assert report["host"]["compared"] == report["host"]["requests"] - 1  # all but the final shutdown
    assert report["host"]["firstDifference"] is None


async def test_chat() -> None:
    report = await replayed("chat")
    [thread] = report["threads"]
    [turn] = thread["turns"]
    assert turn["status"] == "completed" and turn["usage"]
    assert items_of(thread) == [("userMessage", "completed"), ("reasoning", "completed"), ("agentMessage", "completed")]
    assert turn["items"][2]["text"] == chat_reply("Say hello to the transcript.")
    assert [m["toMode"] for m in report["modes"]] == ["DEGRADED_STREAMING", HYBRID]


async def test_command_with_approval() -> None:
    report = await replayed("approval")
    [thread] = report["threads"]
    [command] = [i for t in thread["turns"] for i in t["items"] if i["type"] == "commandExecution"]
    assert command["status"] == "completed" and command["exitCode"] == 0
    assert "echo fixture-approved" in command["command"] and "fixture-approved" in command["output"]
    assert thread["turns"][0]["status"] == "completed"


async def test_error_turn() -> None:
    report = await replayed("error-turn")
    [thread] = report["threads"]
    [turn] = thread["turns"]
    assert turn["status"] == "failed" and turn["error"]
    assert items_of(thread) == [("userMessage", "completed")]


async def test_auth_flows() -> None:
    report = await replayed("auth")
    assert report["threads"] == []
    # authenticated in the required mode (apikey) → healthy; logout → degraded
    assert [m["toMode"] for m in report["modes"]] == ["DEGRADED_STREAMING", HYBRID, "DEGRADED_STREAMING"]
    assert "login" in report["modes"][-1]["reason"]


async def test_restart_after_kill() -> None:
    report = await replayed("restart")
    assert report["transcript"]["codexConnections"] == 2
    assert [t["turns"][0]["status"] for t in report["threads"]] == ["completed", "completed"]
    assert [m["toMode"] for m in report["modes"]] == ["DEGRADED_STREAMING", HYBRID, "DEGRADED_STREAMING", HYBRID]


async def test_a_sidecar_only_transcript_replays_the_same(tmp_path: Path) -> None:
    """What ``capture-bridge record`` writes (no host side): the host commands come from the codex side."""
    full = await replayed("approval")
    side = tmp_path / "approval-sidecar.jsonl"
    lines = (FIXTURES / "approval.jsonl").read_text().splitlines(keepends=True)
    side.write_text("".join(line for line in lines if '"channel":"sidecar"' in line))
    result = await replay(side)
    assert result.complete, result.problems
    assert result.report["threads"] == full["threads"]
    assert result.report["modes"] == full["modes"]


@pytest.mark.parametrize("fmt", [(), ("--json",)])
def test_replaying_twice_gives_byte_identical_output(fmt: tuple[str, ...]) -> None:
    path = str(FIXTURES / "restart.jsonl")
    first = run_cli("replay", *fmt, path)
    second = run_cli("replay", *fmt, path)
    assert first.returncode == 0, first.stderr.decode()[-2000:]
    assert first.stdout and first.stdout == second.stdout


def test_realtime_replay_keeps_the_result() -> None:
    fast = run_cli("replay", "--json", str(FIXTURES / "chat.jsonl"))
    slow = run_cli("replay", "--json", "--realtime", str(FIXTURES / "chat.jsonl"))
    assert slow.returncode == 0, slow.stderr.decode()[-2000:]
    assert json.loads(slow.stdout)["threads"] == json.loads(fast.stdout)["threads"]


def test_replay_refuses_what_is_not_a_transcript(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"not": "a transcript line"}\n{"t": 1}\n')
    result = run_cli("replay", str(bad))
    assert result.returncode == 2 and b"line 1" in result.stderr


def test_replay_of_an_empty_file_or_one_foreign_json_line_exits_2(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    foreign = tmp_path / "foreign.jsonl"
    foreign.write_text('{"level": "info", "msg": "a log line, not a transcript"}\n')
    for path, says in ((empty, b"holds no lines"), (foreign, b"line 1 is not a transcript line")):
        result = run_cli("replay", str(path))
        assert result.returncode == 2, result.stderr
        assert result.stdout == b""
        assert says in result.stderr
