"""The real ``capture-bridge serve`` process, spoken to as the host speaks to it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest

from bridge.client.host import slow_start
from bridge.host.serve import ANSWER_BUDGET_STARTING_S
from tests.reliability.test_host_eof import startup_after_eof
from tests.support.host import bridge_argv, bridge_env, spawn_bridge

EXIT_DEADLINE = 9.0  # docs/protocol.md §1: 3 s, asserted with 3x slack


def vm_hwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


async def test_bridge_info_over_jsonl(tmp_path: Path) -> None:
    async with spawn_bridge(tmp_path) as host:
        info = await host.call("bridge_info")
    assert info["name"] == "capture-bridge"
    assert info["protocolVersion"] == 1
    assert info["framing"] == "jsonl"
    assert info["dataDir"] == str(tmp_path / "data")
    assert {"bridge_info", "shutdown", "get_ingest_config", "set_ingest_config"} <= set(info["commands"])
    assert info["commands"] == sorted(info["commands"])


async def test_content_length_framing_is_answered_in_kind(tmp_path: Path) -> None:
    async with spawn_bridge(tmp_path, framing="content-length") as host:
        info = await host.call("bridge_info")
        assert info["framing"] == "content-length"
        assert (await host.call("get_ingest_config"))["retentionDays"] == 30
    # The reader only understood the answers because they were Content-Length framed.
    assert len(host.frames) >= 2


async def test_raw_stdout_is_only_frames_in_content_length(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    request = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "bridge_info"}).encode()
    framed = b"Content-Length: %d\r\n\r\n%s" % (len(request), request)
    proc = subprocess.run(
        bridge_argv(data_dir), input=framed, capture_output=True, env=bridge_env(tmp_path), timeout=30
    )
    assert proc.returncode == 0
    assert proc.stdout.startswith(b"Content-Length: ")
    from bridge.framing import Frame, FrameDecoder

    decoder = FrameDecoder(1 << 20)
    frames = [json.loads(e.body) for e in decoder.feed(proc.stdout) + decoder.finish() if isinstance(e, Frame)]
    # every byte was part of a well-framed message (notifications may come too)
    assert sum(len(json.dumps(f)) for f in frames) > 0 and decoder._buf == bytearray()
    [answer] = [f for f in frames if f.get("id") == 1]
    assert answer["result"]["framing"] == "content-length"


async def test_requests_without_jsonrpc_or_params_are_accepted(tmp_path: Path) -> None:
    async with spawn_bridge(tmp_path) as host:
        await host.send({"id": 7, "method": "bridge_info"})
        response = await host.wait_response(7)
    assert response["jsonrpc"] == "2.0"
    assert response["result"]["name"] == "capture-bridge"


async def test_batch_is_answered_as_an_array_without_notifications(tmp_path: Path) -> None:
    async with spawn_bridge(tmp_path) as host:
        await host.send(
            [
                {"jsonrpc": "2.0", "id": "a", "method": "bridge_info"},
                {"jsonrpc": "2.0", "method": "get_ingest_config"},  # a notification: no answer
                {"jsonrpc": "2.0", "id": "b", "method": "no_such_method"},
                {"jsonrpc": "2.0", "id": "c", "method": "get_ingest_config"},
            ]
        )
        with anyio.fail_after(30):
            while not host.batches:
                await anyio.sleep(0.02)
        # a batch of notifications only gets no answer at all
        await host.send([{"jsonrpc": "2.0", "method": "bridge_info"}])
        assert (await host.call("bridge_info"))["name"] == "capture-bridge"
    batch = host.batches[0]
    assert [r["id"] for r in batch] == ["a", "b", "c"]
    assert batch[0]["result"]["name"] == "capture-bridge"
    assert batch[1]["error"]["code"] == -32601
    assert "retentionDays" in batch[2]["result"]
    assert len(host.batches) == 1


@pytest.mark.parametrize(
    ("raw", "code", "kind", "words"),
    [
        (b"{not json", -32700, "parse_error", "Parse error"),
        (b"[]", -32600, "invalid_request", "empty batch"),
        (b"42", -32600, "invalid_request", "JSON object"),
        (b'{"id": 901}', -32600, "invalid_request", "'method'"),
        (b'{"id": {"x": 1}, "method": "bridge_info"}', -32600, "invalid_request", "'id'"),
        (b'{"jsonrpc": "1.0", "id": 902, "method": "bridge_info"}', -32600, "invalid_request", "jsonrpc"),
        (b'{"id": 903, "method": "frobnicate"}', -32601, "method_not_found", "frobnicate"),
        (b'{"id": 904, "method": "get_live_events", "params": [1]}', -32602, "invalid_params", "get_live_events"),
        (b'{"id": 905, "method": "get_live_events", "params": {"bogus": 1}}', -32602, "invalid_params", "bogus"),
        (
            b'{"id": 906, "method": "get_live_events", "params": {"sinceSeq": "x"}}',
            -32602,
            "invalid_params",
            "sinceSeq",
        ),
    ],
)
async def test_each_error_names_the_problem(tmp_path: Path, raw: bytes, code: int, kind: str, words: str) -> None:
    async with spawn_bridge(tmp_path) as host:
        await host.send_raw(raw + b"\n")
        assert (await host.call("bridge_info"))["name"] == "capture-bridge"  # still serving
        # Some answers need the commands loaded (a slow start): wait for it rather than race the EOF.
        await host.call("get_ingest_config")
    errors = [f["error"] for f in host.frames if isinstance(f, dict) and "error" in f]
    assert len(errors) == 1, host.frames
    assert errors[0]["code"] == code
    assert errors[0]["data"]["kind"] == kind
    assert words in errors[0]["message"]
    if code == -32602:
        assert errors[0]["data"]["field"]


async def test_snake_case_params_are_accepted(tmp_path: Path) -> None:
    async with spawn_bridge(tmp_path) as host:
        held = await host.call("get_live_events", {"since_seq": 0})
        assert [m["params"]["seq"] for m in held] == list(range(1, len(held) + 1))


@pytest.mark.parametrize("mib", [20, 64])
async def test_oversized_frame_is_refused_without_buffering_and_serving_goes_on(tmp_path: Path, mib: int) -> None:
    async with spawn_bridge(tmp_path) as host:
        await host.call("get_ingest_config")  # waits until everything is loaded
        before = vm_hwm_kib(host.pid)
        chunk = b"a" * (1 << 20)
        await host.send_raw(b'{"jsonrpc":"2.0","id":99,"method":"bridge_info","params":{"pad":"')
        for _ in range(mib):
            await host.send_raw(chunk)
        await host.send_raw(b'"}}\n')
        info = await host.call("bridge_info")
        after = vm_hwm_kib(host.pid)
    assert info["name"] == "capture-bridge"
    refused = [
        f
        for f in host.frames
        if isinstance(f, dict) and f.get("error", {}).get("data", {}).get("kind") == "frame_too_large"
    ]
    assert len(refused) == 1
    assert refused[0]["id"] is None
    assert refused[0]["error"]["code"] == -32600
    assert 99 not in host.responses
    # At most the 16 MiB limit is ever held (plus slack), never the whole frame.
    assert after - before < 24 * 1024, (before, after)


STRAY_OUTPUT = """
import os
import bridge.host.commands.config
from bridge.host.registry import REGISTRY, Command
_cmd = REGISTRY["get_ingest_config"]
async def _noisy(app, params):
    print("STRAY PRINT FROM A HANDLER")
    os.write(1, b"STRAY FD1 WRITE\\n")
    return await _cmd.handler(app, params)
REGISTRY["get_ingest_config"] = Command(_cmd.name, _cmd.params, _cmd.result, _noisy, _cmd.doc)
"""


async def test_stray_print_in_a_handler_never_reaches_stdout(tmp_path: Path) -> None:
    async with spawn_bridge(tmp_path, prelude=STRAY_OUTPUT) as host:
        config = await host.call("get_ingest_config")
        assert config["retentionDays"] == 30
    assert await host.wait_exit(EXIT_DEADLINE) == 0
    assert "STRAY PRINT FROM A HANDLER" in host.stderr()
    assert "STRAY FD1 WRITE" in host.stderr()
    assert all(isinstance(f, (dict, list)) for f in host.frames)


async def test_stdin_eof_exits_zero_promptly(tmp_path: Path) -> None:
    async with spawn_bridge(tmp_path) as host:
        await host.call("bridge_info")
        started = time.monotonic()
        await host.close_stdin()
        assert await host.wait_exit(EXIT_DEADLINE) == 0
        assert time.monotonic() - started < EXIT_DEADLINE


async def test_shutdown_answers_null_then_exits_zero(tmp_path: Path) -> None:
    async with spawn_bridge(tmp_path) as host:
        assert await host.call("shutdown") is None
        assert await host.wait_exit(EXIT_DEADLINE) == 0


@pytest.mark.parametrize("startup_delay", [0.0, 0.8, 0.8])
async def test_requests_sent_before_eof_are_all_answered(tmp_path: Path, startup_delay: float) -> None:
    """A start-up slower than a second (simulated: a slow machine) still answers the whole burst."""
    async with spawn_bridge(tmp_path, prelude=slow_start(startup_delay)) as host:
        for i in range(20):
            await host.send({"id": i, "method": "get_ingest_config"})
        await host.close_stdin()
        assert await host.wait_exit(EXIT_DEADLINE) == 0
    assert sorted(host.responses) == list(range(20))
    if startup_after_eof(host) < ANSWER_BUDGET_STARTING_S:  # unless the machine is badly overloaded
        assert all("result" in r for r in host.responses.values())
    else:
        assert all("result" in r or r["error"]["code"] == -32002 for r in host.responses.values())


async def test_parent_death_stops_the_bridge_even_with_stdin_open(tmp_path: Path) -> None:
    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        async with spawn_bridge(tmp_path, args=("--parent-pid", str(parent.pid))) as host:
            await host.call("bridge_info")
            parent.send_signal(signal.SIGKILL)
            parent.wait()
            started = time.monotonic()
            assert await host.wait_exit(6.0) == 0  # 2 s with 3x slack
            assert time.monotonic() - started < 6.0
    finally:
        if parent.poll() is None:
            parent.kill()


async def test_second_bridge_on_the_same_data_dir_exits_naming_the_holder(tmp_path: Path) -> None:
    async with spawn_bridge(tmp_path) as host:
        await host.call("bridge_info")
        started = time.monotonic()
        proc = subprocess.run(
            bridge_argv(tmp_path / "data"), input=b"", capture_output=True, env=bridge_env(tmp_path), timeout=30
        )
        assert time.monotonic() - started < 9
    assert proc.returncode != 0
    assert proc.stdout == b""
    assert f"pid {host.pid}" in proc.stderr.decode()


async def test_logs_are_json_lines_on_stderr(tmp_path: Path) -> None:
    async with spawn_bridge(tmp_path) as host:
        await host.call("bridge_info")
    lines = [line for line in host.stderr().splitlines() if line.strip()]
    assert lines
    for line in lines:
        entry = json.loads(line)
        assert {"ts", "level", "logger", "msg"} <= set(entry)


def test_python_dash_m_and_console_script_agree(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "bridge", "--help"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0
    assert "serve" in out.stdout
    script = Path(sys.executable).parent / "capture-bridge"
    assert script.exists(), "the console script capture-bridge is installed with the package"
    out2 = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=30)
    assert out2.stdout == out.stdout


def test_unknown_data_dir_permissions_are_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("x")
    proc = subprocess.run(
        bridge_argv(blocker / "data"), input=b"", capture_output=True, env=bridge_env(tmp_path), timeout=30
    )
    assert proc.returncode != 0
    assert "cannot use data dir" in proc.stderr.decode()
    assert os.path.isfile(blocker)


def test_nothing_reaches_stdout_before_the_first_frame_then_queued_notifications_come_in_order(
    tmp_path: Path,
) -> None:
    import select

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "config.json").write_text(json.dumps({"otlpReceiver": {"port": 0}, "autoIngestEnabled": True}))
    proc = subprocess.Popen(
        bridge_argv(data_dir), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        env=bridge_env(tmp_path),
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    try:
        time.sleep(2.0)  # the receiver binds and the first mode is evaluated: notifications are raised
        readable, _, _ = select.select([proc.stdout], [], [], 0)
        assert readable == [], "nothing may be written before the host's first frame"
        proc.stdin.write(b'{"jsonrpc":"2.0","id":1,"method":"bridge_info"}\n')
        proc.stdin.flush()
        frames = []
        while True:
            message = json.loads(proc.stdout.readline())
            frames.append(message)
            if message.get("id") == 1:
                break
    finally:
        proc.stdin.close()
        proc.wait(timeout=EXIT_DEADLINE)
    notes = [f for f in frames if "method" in f]
    assert notes, "the notifications raised before the first frame are sent once the framing is known"
    assert [n["params"]["seq"] for n in notes] == list(range(1, len(notes) + 1))
    assert {n["method"] for n in notes} >= {"otel-receiver-status", "capture-reliability-transition"}


async def test_a_storm_of_malformed_frames_never_stops_the_bridge(tmp_path: Path) -> None:
    import random

    rng = random.Random(20261127)
    pieces = [b"{", b"}", b"[", b"]", b'"id"', b'"method"', b":", b",", b"1", b"null", b'"x"', b"\xff", b"\\u0000"]
    frames = [b"".join(rng.choice(pieces) for _ in range(rng.randint(1, 12))) for _ in range(300)]
    frames += [b'{"id": 5, "method": "set_ingest_config", "params": {"limits": {"maxFrameBytes": [1]}}}']
    frames += [b'{"id": 6, "method": "get_captured_thread", "params": {"threadId": ""}}']
    async with spawn_bridge(tmp_path) as host:
        for frame in frames:
            await host.send_raw(frame.replace(b"\n", b" ") + b"\n")
        info = await host.call("bridge_info", timeout=60)
        assert host.process.returncode is None
    assert info["name"] == "capture-bridge"
    answers = [f for f in host.frames if isinstance(f, dict) and "error" in f]
    assert answers, "malformed frames are answered with errors"
    for answer in answers:
        assert answer["error"]["data"]["kind"] in {
            "parse_error", "invalid_request", "method_not_found", "invalid_params",
        }, answer  # fmt: skip
        assert "Traceback" not in answer["error"]["message"]
    assert "Traceback" not in host.stderr()
