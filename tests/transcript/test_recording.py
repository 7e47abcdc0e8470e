"""Recording: a bridge's transcript (flag and config key), redaction, rotation, crash safety, ``record``."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import anyio

from bridge.transcript.format import parse_lines
from bridge.transcript.recorder import Recorder
from bridge.transcript.replay import replay
from bridge.transcript.report import render_json, render_text
from tests.support.host import Host, spawn_bridge
from tests.transcript.support import FAKE_SIDECAR, fake_codex, run_cli, transcript_lines

SECRET = "sk-proj-transcriptSECRET0123456789"


def fake_config(tmp_path: Path, **extra: object) -> dict[str, object]:
    return {"appServerAuthMode": "apikey", "codex": {"binaryPath": str(fake_codex(tmp_path))}, **extra}


async def login(host: Host) -> None:
    await host.call("start_codex_app_server")
    await host.call("codex_app_server_initialize")
    await host.call("codex_app_server_initialized")
    await host.call("codex_app_server_account_login_start", {"authMode": "apiKey", "apiKey": SECRET})
    await host.wait_for("codex-app-server-status", lambda p: p["authState"] == "authenticated", timeout=20)


async def test_serve_records_both_connections_and_no_secret(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    async with spawn_bridge(tmp_path, config=fake_config(tmp_path), args=("--transcript", str(path))) as host:
        await login(host)
        await host.call("shutdown")
        await host.wait_exit(10)
    text = path.read_text()
    assert SECRET not in text
    lines = transcript_lines(path)
    assert {(x["channel"], x["dir"]) for x in lines if "msg" in x} == {
        ("host", "in"), ("host", "out"), ("sidecar", "in"), ("sidecar", "out"),
    }  # fmt: skip
    ts = [x["t"] for x in lines]
    assert ts == sorted(ts) and all(x["ts"].endswith("Z") for x in lines)
    frames = [x for x in lines if "msg" in x]
    [login_start] = [x for x in frames if x["channel"] == "sidecar" and x["msg"].get("method") == "account/login/start"]
    assert login_start["msg"]["params"]["apiKey"] == "[REDACTED]" and login_start["conn"] == 1
    [host_login] = [x for x in frames if x["msg"].get("method") == "codex_app_server_account_login_start"]
    assert host_login["dir"] == "in" and host_login["msg"]["params"]["apiKey"] == "[REDACTED]"
    assert [x for x in lines if x.get("event") == "exit"][-1]["expected"] is True

    # the replay shows the secret nowhere either, and reproduces the auth state
    result = await replay(path)
    assert result.complete, result.problems
    out = render_json(result.report) + render_text(result.report)
    assert SECRET not in out
    transitions = [x["msg"] for x in frames if x["msg"].get("method") == "capture-reliability-transition"]
    pushed = [t["params"]["toMode"] for t in transitions]
    assert [m["toMode"] for m in result.report["modes"]] == pushed == ["FAILURE"]  # the baseline was off


async def test_the_config_key_turns_recording_on(tmp_path: Path) -> None:
    path = tmp_path / "from-config.jsonl"
    async with spawn_bridge(tmp_path, config=fake_config(tmp_path, transcript={"path": str(path)})) as host:
        await host.call("bridge_info")
        await host.call("shutdown")
        await host.wait_exit(10)
    methods = [x["msg"].get("method") for x in transcript_lines(path) if x["channel"] == "host" and x["dir"] == "in"]
    assert methods == ["bridge_info", "shutdown"]


async def test_a_killed_bridge_leaves_a_valid_transcript(tmp_path: Path) -> None:
    path = tmp_path / "crash.jsonl"
    async with spawn_bridge(tmp_path, config=fake_config(tmp_path), args=("--transcript", str(path))) as host:
        await login(host)
        await host.call("get_codex_app_server_status")
        await anyio.sleep(0.5)  # a few flush intervals
        os.kill(host.pid, signal.SIGKILL)
        await host.wait_exit(10)
    raw = path.read_bytes()
    assert raw.endswith(b"\n")
    lines = list(parse_lines(raw.splitlines(keepends=True)))
    methods = [line.msg.get("method") for line in lines if line.channel == "host" and line.dir == "in"]
    assert methods[-1] == "get_codex_app_server_status"
    assert any(line.channel == "sidecar" for line in lines)


def test_rotation_bounds_the_size(tmp_path: Path) -> None:
    path = tmp_path / "rot.jsonl"
    recorder = Recorder(path, max_bytes=4096)
    frame = json.dumps({"method": "item/agentMessage/delta", "params": {"delta": "x" * 200}}).encode()
    for _ in range(100):
        recorder.record("sidecar", "in", frame, 1)
    assert recorder.flush(5)
    recorder.close()
    rotated = path.with_name("rot.jsonl.1")
    assert rotated.exists() and recorder.rotations >= 5
    for p in (path, rotated):
        assert 0 < p.stat().st_size <= 4096
        assert all(line.msg["method"] == "item/agentMessage/delta" for line in parse_lines(p.read_bytes().splitlines()))
    assert not path.with_name("rot.jsonl.2").exists()
    recorder.record("host", "in", frame)  # after close: ignored, never raises


def test_record_is_a_transparent_recording_pass_through(tmp_path: Path) -> None:
    out = tmp_path / "rec.jsonl"
    requests = [
        {"id": 0, "method": "initialize", "params": {"clientInfo": {"name": "t", "version": "1"}}},
        {"method": "initialized"},
        {"id": 1, "method": "account/login/start", "params": {"type": "apiKey", "apiKey": SECRET}},
    ]
    stdin = b"".join(json.dumps(r).encode() + b"\n" for r in requests)
    result = run_cli("record", "--out", str(out), "--", sys.executable, str(FAKE_SIDECAR), "normal", stdin=stdin)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert {a.get("id") for a in answers if "id" in a} >= {0, 1}
    lines = transcript_lines(out)
    assert SECRET not in out.read_text()
    assert all(x["channel"] == "sidecar" for x in lines)
    assert [x["msg"] for x in lines if x.get("dir") == "out"][:2] == requests[:2]
    assert [x["msg"] for x in lines if x.get("dir") == "in" and "msg" in x] == answers
    assert lines[-1]["event"] == "exit" and lines[-1]["code"] == 0


def test_record_exits_with_the_peers_code(tmp_path: Path) -> None:
    out = tmp_path / "rec.jsonl"
    result = run_cli("record", "--out", str(out), "--", sys.executable, str(FAKE_SIDECAR), "crash_on_start")
    assert result.returncode == 3
    assert transcript_lines(out)[-1]["code"] == 3
