"""The receiver inside a real ``capture-bridge serve``: commands, notifications, runtime.json,
re-binding on config changes, a bind failure that does not take the bridge down, and the
``claude-env`` command line."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio

from tests.receiver.payloads import SESSION, claude_logs
from tests.receiver.support import post, telemetry_rows
from tests.support.host import spawn_bridge

REPO = Path(__file__).resolve().parents[2]


def claude_env_cli(data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge", "claude-env", "--data-dir", str(data_dir)],
        capture_output=True, text=True, cwd=REPO, timeout=60,
    )  # fmt: skip


def exported(stdout: str) -> dict[str, str]:
    import shlex

    out: dict[str, str] = {}
    for line in stdout.splitlines():
        assert line.startswith("export "), line
        name, value = line[len("export ") :].split("=", 1)
        out[name] = shlex.split(value)[0]
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stored(data_dir: Path) -> list[str]:
    return [row["dedup_key"] for row in telemetry_rows(data_dir)]


async def test_receiver_lifecycle_in_the_bridge(tmp_path: Path) -> None:
    config: dict[str, Any] = {"autoIngestEnabled": True, "otlpReceiver": {"port": 0}}
    async with spawn_bridge(tmp_path, config=config) as host:
        data_dir = host.data_dir
        info = await host.call("bridge_info")
        assert {"get_otlp_receiver_status", "set_otlp_receiver_enabled"} <= set(info["commands"])
        first = await host.wait_for("otel-receiver-status", lambda p: p["state"] == "listening", timeout=30)
        status = await host.call("get_otlp_receiver_status")
        assert status["state"] == "listening" and status["endpoint"] == first["endpoint"]
        assert status["headerName"] == "x-capture-bridge-key"
        key = (data_dir / "otlp.key").read_text().strip()
        assert stat.S_IMODE((data_dir / "otlp.key").stat().st_mode) == 0o600
        assert key not in json.dumps(status) and key not in json.dumps(host.notifications)
        runtime = json.loads((data_dir / "runtime.json").read_text())
        assert runtime["pid"] == host.pid and runtime["otlpReceiver"]["endpoint"] == status["endpoint"]

        # claude-env points at it, with the key
        cli = claude_env_cli(data_dir)
        assert cli.returncode == 0, cli.stderr
        env = exported(cli.stdout)
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == status["endpoint"]
        assert env["OTEL_EXPORTER_OTLP_HEADERS"] == f"x-capture-bridge-key={key}"
        assert env["CLAUDE_CODE_ENABLE_TELEMETRY"] == "1"
        assert env["OTEL_LOGS_EXPORTER"] == env["OTEL_METRICS_EXPORTER"] == env["OTEL_TRACES_EXPORTER"] == "otlp"
        assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf"

        reply = await post(status["endpoint"], "/v1/logs", claude_logs(1).SerializeToString(), key=key)
        assert reply.status == 200
        assert stored(data_dir) == [f"claude:{SESSION}:1"]
        status = await host.call("get_otlp_receiver_status")
        assert status["accepted"] == 1 and status["lastBatchAtIso"]

        # off: persisted, stopped when the answer arrives, reported
        status = await host.call("set_otlp_receiver_enabled", {"enabled": False})
        assert status["state"] == "stopped" and status["endpoint"] is None
        assert json.loads((data_dir / "config.json").read_text())["otlpReceiver"]["enabled"] is False
        await host.wait_for("otel-receiver-status", lambda p: p["state"] == "stopped", timeout=10)
        assert claude_env_cli(data_dir).returncode == 1

        # on again, then moved by set_ingest_config: listening on the new port when it answers
        status = await host.call("set_otlp_receiver_enabled", {"enabled": True})
        assert status["state"] == "listening"
        port = free_port()
        await host.call("set_ingest_config", {"otlpReceiver": {"port": port}})
        status = await host.call("get_otlp_receiver_status")
        assert status["endpoint"] == f"http://127.0.0.1:{port}"
        reply = await post(status["endpoint"], "/v1/logs", claude_logs(2).SerializeToString(), key=key)
        assert reply.status == 200

        # auto ingest off: the status says so
        await host.call("set_ingest_config", {"autoIngestEnabled": False})
        await host.wait_for(
            "otel-receiver-status", lambda p: "autoIngestEnabled is false" in (p.get("message") or ""), timeout=10
        )
    runtime = json.loads((data_dir / "runtime.json").read_text())
    assert runtime["otlpReceiver"]["state"] == "stopped"
    assert claude_env_cli(data_dir).returncode == 1


async def test_a_taken_port_is_state_error_not_a_crash(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        async with spawn_bridge(tmp_path, config={"otlpReceiver": {"port": port}}) as host:
            info = await host.call("bridge_info")
            assert info["protocolVersion"] == 1
            status = await host.call("get_otlp_receiver_status")
            assert status["state"] == "error" and str(port) in status["message"]
            cli = claude_env_cli(host.data_dir)
            assert cli.returncode == 1 and "not listening" in cli.stderr
            # once the host picks another port the receiver recovers
            await host.call("set_ingest_config", {"otlpReceiver": {"port": 0}})
            status = await host.call("get_otlp_receiver_status")
            assert status["state"] == "listening"
            assert os.path.exists(host.data_dir / "runtime.json")
            with anyio.fail_after(10):
                await host.wait_for("otel-receiver-status", lambda p: p["state"] == "listening")
