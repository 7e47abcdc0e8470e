"""``serve`` failing before the protocol starts says why in JSON log lines, and an already dead
``--parent-pid`` ends it at once."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.support.host import bridge_argv, bridge_env, spawn_bridge

EXIT_DEADLINE = 9.0  # 3 s, asserted with 3x slack


def json_lines(stderr: bytes) -> list[dict[str, Any]]:
    lines = [line for line in stderr.decode().splitlines() if line.strip()]
    assert lines, "a failure is never silent"
    return [json.loads(line) for line in lines]  # every line is JSON: no plain text


def test_an_invalid_config_file_is_a_json_log_line_naming_the_field(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "config.json").write_text(json.dumps({"otlpReceiver": {"port": 70000}}))
    proc = subprocess.run(
        bridge_argv(data_dir), input=b"", capture_output=True, env=bridge_env(tmp_path), timeout=60
    )
    assert proc.returncode == 1
    assert proc.stdout == b""
    [entry] = [e for e in json_lines(proc.stderr) if e["level"] == "error"]
    assert entry["logger"] == "bridge.serve"
    assert entry["field"] == "otlpReceiver.port"
    assert entry["configPath"] == str(data_dir / "config.json")
    assert "config.json is invalid at otlpReceiver.port" in entry["msg"]


def test_a_config_file_that_is_not_json_is_a_json_log_line(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "config.json").write_text("{not json")
    proc = subprocess.run(
        bridge_argv(data_dir), input=b"", capture_output=True, env=bridge_env(tmp_path), timeout=60
    )
    assert proc.returncode == 1
    [entry] = [e for e in json_lines(proc.stderr) if e["level"] == "error"]
    assert "config.json is invalid" in entry["msg"]


async def test_a_busy_data_dir_is_a_json_log_line_naming_the_holder(tmp_path: Path) -> None:
    async with spawn_bridge(tmp_path) as host:
        await host.call("bridge_info")
        proc = subprocess.run(
            bridge_argv(tmp_path / "data"), input=b"", capture_output=True, env=bridge_env(tmp_path), timeout=60
        )
    assert proc.returncode == 1
    assert proc.stdout == b""
    [entry] = [e for e in json_lines(proc.stderr) if e["level"] == "error"]
    assert entry["holderPid"] == str(host.pid)
    assert f"in use by capture-bridge pid {host.pid}" in entry["msg"]


async def test_a_parent_pid_that_is_already_dead_ends_the_bridge_at_once(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    async with spawn_bridge(tmp_path, args=("--parent-pid", str(dead.pid))) as host:
        started = time.monotonic()
        assert await host.wait_exit(EXIT_DEADLINE) == 0
        assert time.monotonic() - started < EXIT_DEADLINE
    assert "the parent process is gone" in host.stderr()
