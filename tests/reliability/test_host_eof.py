"""Requests written just before stdin EOF (or ``shutdown``) are all answered, however slow the start.

The slow machine is simulated with a prelude that delays the subsystems'
start (``bridge.client.host.slow_start``), so these tests fail on a fast
machine too when the drain gives up early. Each burst-then-EOF case runs
several times: the race it guards against is timing-dependent.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

import pytest

from bridge.client.host import slow_start
from bridge.framing import Framing
from bridge.host.serve import ANSWER_BUDGET_STARTING_S
from tests.support.host import Host, spawn_bridge

EXIT_DEADLINE = 9.0  # exit within 3 s of EOF, asserted with 3x slack
SHUTTING_DOWN = -32002


async def burst_then_eof(host: Host, count: int = 20, method: str = "get_ingest_config") -> float:
    """Write ``count`` requests and close stdin at once; seconds from EOF to the exit (rc 0)."""
    frames = b"".join(
        b"Content-Length: %d\r\n\r\n%s" % (len(m), m) if host.framing == "content-length" else m + b"\n"
        for m in (b'{"id":%d,"method":"%s"}' % (i, method.encode()) for i in range(count))
    )
    await host.send_raw(frames)
    await host.close_stdin()
    started = time.monotonic()
    assert await host.wait_exit(EXIT_DEADLINE) == 0
    return time.monotonic() - started


def startup_after_eof(host: Host) -> float:
    """Seconds from the bridge reading EOF to its subsystems being up (the first capture mode), from its log."""
    at: dict[str, datetime] = {}
    for line in host.stderr().splitlines():
        entry = json.loads(line)
        if entry["msg"] == "stdin closed: shutting down":
            at["eof"] = datetime.fromisoformat(entry["ts"].replace("Z", "+00:00"))
        elif entry["msg"].startswith("capture mode None ->"):
            at["up"] = datetime.fromisoformat(entry["ts"].replace("Z", "+00:00"))
    if "up" not in at:
        return float("inf")
    return (at["up"] - at["eof"]).total_seconds()


def answers(host: Host) -> dict[int, dict[str, object]]:
    return {m["id"]: m for m in host.frames if isinstance(m, dict) and isinstance(m.get("id"), int)}


@pytest.mark.parametrize("repeat", range(4))
async def test_burst_then_eof_during_a_slow_start_is_answered_in_full(tmp_path: Path, repeat: int) -> None:
    """Start-up takes over a second after the EOF (0.8 s added to the real one): the drain waits for
    it, within its 2 s budget, and every request gets its result. Before, this gave 0 answers."""
    async with spawn_bridge(tmp_path, prelude=slow_start(0.8)) as host:
        took = await burst_then_eof(host)
    got = answers(host)
    assert sorted(got) == list(range(20))
    assert took < EXIT_DEADLINE
    if startup_after_eof(host) < ANSWER_BUDGET_STARTING_S:  # always so, unless the machine is badly overloaded
        assert all("result" in m and m["result"]["retentionDays"] == 30 for m in got.values()), got  # type: ignore[index]
    else:
        assert all("result" in m or m["error"]["code"] == SHUTTING_DOWN for m in got.values()), got  # type: ignore[index]


@pytest.mark.parametrize("delay", [0.0, 0.5, 1.2, 1.7, 2.2, 3.0])
async def test_burst_then_eof_is_answered_exactly_once_whatever_the_start_takes(tmp_path: Path, delay: float) -> None:
    """Around the budget's edge some requests may get the shutting-down error instead of a result,
    but every one is answered exactly once and the bridge exits in time."""
    async with spawn_bridge(tmp_path, prelude=slow_start(delay)) as host:
        took = await burst_then_eof(host)
    replies = [m for m in host.frames if isinstance(m, dict) and isinstance(m.get("id"), int)]
    assert sorted(m["id"] for m in replies) == list(range(20))
    for m in replies:
        assert "result" in m or m["error"]["code"] == SHUTTING_DOWN, m
    assert took < EXIT_DEADLINE


@pytest.mark.parametrize("framing", ["jsonl", "content-length"])
@pytest.mark.parametrize("repeat", range(2))
async def test_burst_then_eof_at_a_normal_start_is_answered_in_full(
    tmp_path: Path, framing: Framing, repeat: int
) -> None:
    async with spawn_bridge(tmp_path, framing=framing) as host:
        await burst_then_eof(host)
    got = answers(host)
    assert sorted(got) == list(range(20))
    if "stopping before start-up finished" not in host.stderr():  # always so, unless the machine is overloaded
        assert all("result" in m for m in got.values()), got
    else:
        assert all("result" in m or m["error"]["data"]["started"] is False for m in got.values()), got  # type: ignore[index]


@pytest.mark.parametrize("repeat", range(2))
async def test_a_start_slower_than_the_budget_answers_every_request_shutting_down(tmp_path: Path, repeat: int) -> None:
    """Start-up would take 60 s: the bridge still exits in time, and no request goes unanswered."""
    async with spawn_bridge(tmp_path, prelude=slow_start(60)) as host:
        took = await burst_then_eof(host)
    got = answers(host)
    assert sorted(got) == list(range(20))
    for message in got.values():
        error = message["error"]
        assert isinstance(error, dict)
        assert error["code"] == SHUTTING_DOWN
        assert error["data"] == {"kind": "shutting_down", "started": False}
        assert "get_ingest_config" in error["message"] and "not run" in error["message"]
    assert took < EXIT_DEADLINE
    assert "Traceback" not in host.stderr()


async def test_shutdown_inside_a_burst_during_a_slow_start(tmp_path: Path) -> None:
    """``shutdown`` is answered at once (null); what came before it still gets real answers."""
    async with spawn_bridge(tmp_path, prelude=slow_start(1.0)) as host:
        frames = [{"id": i, "method": "get_ingest_config"} for i in range(10)]
        frames.append({"id": 10, "method": "shutdown"})
        for frame in frames:
            await host.send(frame)
        assert await host.wait_exit(EXIT_DEADLINE) == 0
    got = answers(host)
    assert sorted(got) == list(range(11))
    assert got[10]["result"] is None
    if "stopping before start-up finished" not in host.stderr():  # always so, unless the machine is overloaded
        assert all("result" in got[i] for i in range(10)), got
    else:  # start-up outlasted its 2 s budget: the bridge says so, and what it could not run it says was not run
        assert all("result" in got[i] or got[i]["error"]["data"]["started"] is False for i in range(10)), got  # type: ignore[index]


HANGING_COMMAND = """
import anyio
import bridge.host.commands.capture as _capture
from bridge.host.registry import REGISTRY, Command
_cmd = REGISTRY["get_codex_stream_dedupe_log"]
async def _hang(app, params):
    await anyio.sleep(600)
REGISTRY["get_codex_stream_dedupe_log"] = Command(_cmd.name, _cmd.params, _cmd.result, _hang, _cmd.doc)
"""


async def test_a_command_still_running_at_eof_is_answered_shutting_down(tmp_path: Path) -> None:
    """A handler that never returns: at EOF it is stopped within the budget and answered, never dropped."""
    async with spawn_bridge(tmp_path, prelude=HANGING_COMMAND) as host:
        await host.call("get_ingest_config", timeout=60)
        await host.send({"id": 1, "method": "get_codex_stream_dedupe_log"})
        await host.send({"id": 2, "method": "get_ingest_config"})
        await host.wait_response(2, timeout=30)
        await host.close_stdin()
        started = time.monotonic()
        assert await host.wait_exit(EXIT_DEADLINE) == 0
        took = time.monotonic() - started
    error = answers(host)[1]["error"]
    assert isinstance(error, dict)
    assert error["code"] == SHUTTING_DOWN and error["data"]["started"] is True
    assert "get_codex_stream_dedupe_log" in error["message"]
    assert took < EXIT_DEADLINE
