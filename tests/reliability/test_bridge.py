"""Capture reliability through a real spawned bridge: transitions pushed the moment facts change,
persisted across restarts, and the Go / No-Go from the command and from the CLI."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from bridge.client.host import REPO, bridge_env
from tests.support.host import Host, HostError, spawn_bridge

FAKE_SIDECAR = Path(__file__).resolve().parents[1] / "fakes" / "fake_sidecar.py"
TRANSITION = "capture-reliability-transition"
API_KEY = "sk-test-reliability-0123456789abcdef"


def fake(mode: str) -> dict[str, Any]:
    return {"binaryPath": sys.executable, "args": [str(FAKE_SIDECAR), mode]}


def transitions(host: Host) -> list[tuple[str | None, str]]:
    return [(p["fromMode"], p["toMode"]) for m, p in host.notifications if m == TRANSITION]


async def cli(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    result = await anyio.run_process(
        [sys.executable, "-m", "bridge", *args], env=bridge_env(tmp_path), cwd=REPO, check=False
    )
    return result.returncode, result.stdout.decode(), result.stderr.decode()


async def started(host: Host, mode: str) -> dict[str, Any]:
    await host.call("bridge_info")  # the first frame: queued notifications flow from here
    first = await host.wait_for(TRANSITION, timeout=10)
    assert first["fromMode"] is None and first["toMode"] == mode, first
    return first


async def test_transitions_are_pushed_when_config_facts_change(tmp_path: Path) -> None:
    config = {"autoIngestEnabled": False, "otlpReceiver": {"port": 0}}
    async with spawn_bridge(tmp_path, config=config) as host:
        first = await started(host, "FAILURE")
        assert "autoIngestEnabled is false" in first["reason"]

        # Each command answers after its change took effect; the transition was pushed before the
        # answer (same ordered stdout), so it is already here: nobody polled.
        await host.call("set_ingest_config", {"autoIngestEnabled": True})
        assert transitions(host)[-1] == ("FAILURE", "DEGRADED_STREAMING")
        await host.call("codex_app_server_set_stream_kill_switch", {"enabled": True})
        assert transitions(host)[-1] == ("DEGRADED_STREAMING", "OTEL_ONLY")
        # a fact changes but the mode does not: no transition
        await host.call("set_ingest_config", {"streamEnrichmentEnabled": False})
        assert len(transitions(host)) == 3
        await host.call("set_otlp_receiver_enabled", {"enabled": False})
        last = [p for m, p in host.notifications if m == TRANSITION][-1]
        assert (last["fromMode"], last["toMode"]) == ("OTEL_ONLY", "FAILURE")
        assert "receiver is stopped" in last["reason"]

        status = await host.call("get_capture_reliability_status")
        pushed = [p for m, p in host.notifications if m == TRANSITION]
        assert (
            status["transitions"]
            == [{k: p[k] for k in ("atIso", "fromMode", "toMode", "reason")} for p in pushed][::-1]
        )
        assert status["mode"] == "FAILURE" and status["otelBaselineHealthy"] is False
        assert status["streamExpected"] is False
        assert status["reasons"][0].startswith("The OTLP receiver is stopped")
        assert status["appServer"]["state"] == "inactive"
        for key in (
            "streamEventsAccepted",
            "streamEventsDuplicates",
            "streamEventsDropped",
            "streamEventsReplaced",
            "parserValidationErrorsTotal",
            "rpcTimeoutsTotal",
            "approvalTimeoutsTotal",
            "restartEventsTotal",
            "pendingRpcs",
            "pendingApprovals",
            "sidecarStderrBuffered",
            "sidecarStderrDropped",
            "timeSinceLastStreamEventMs",
            "eventLagP50Ms",
            "eventLagP99Ms",
            "unknownNotificationsByMethod",
            "timeSinceLastBaselineBatchMs",
        ):
            assert key in status["metrics"], key
        assert status["metrics"]["timeSinceLastStreamEventMs"] is None

        # a pure read: asking again changes nothing and pushes nothing
        count = len(host.notifications)
        again = await host.call("get_capture_reliability_status")
        assert again["transitions"] == status["transitions"] and len(host.notifications) == count


async def test_sidecar_facts_push_transitions_without_polling(tmp_path: Path) -> None:
    config = {
        "autoIngestEnabled": True,
        "appServerAuthMode": "apikey",
        "otlpReceiver": {"port": 0},
        "codex": fake("normal"),
    }
    async with spawn_bridge(tmp_path, config=config) as host:
        await started(host, "DEGRADED_STREAMING")
        await host.call("start_codex_app_server")
        await host.call("codex_app_server_initialize")
        await host.call("codex_app_server_initialized")
        assert transitions(host)[-1] == (None, "DEGRADED_STREAMING")
        # the sidecar's own account/updated notification confirms the login: HYBRID_ACTIVE
        await host.call("codex_app_server_account_login_start", {"authMode": "apiKey", "apiKey": API_KEY})
        await host.wait_for(TRANSITION, lambda p: p["toMode"] == "HYBRID_ACTIVE", timeout=10)
        status = await host.call("get_codex_app_server_status")
        mark = len(host.notifications)
        # the process dies: the supervisor notices the exit and the mode follows, unasked
        os.kill(status["pid"], signal.SIGKILL)
        down = await host.wait_for(TRANSITION, since=mark, timeout=10)
        assert (down["fromMode"], down["toMode"]) == ("HYBRID_ACTIVE", "DEGRADED_STREAMING")
        assert "codex app-server" in down["reason"]
        assert API_KEY not in json.dumps(host.notifications)


async def test_transitions_survive_a_bridge_restart(tmp_path: Path) -> None:
    config = {"autoIngestEnabled": False, "otlpReceiver": {"port": 0}}
    async with spawn_bridge(tmp_path, config=config) as host:
        await started(host, "FAILURE")
        await host.call("set_ingest_config", {"autoIngestEnabled": True, "streamEnrichmentEnabled": False})
        before = (await host.call("get_capture_reliability_status"))["transitions"]
        await host.call("shutdown")
        assert await host.wait_exit(5) == 0
    assert [(t["fromMode"], t["toMode"]) for t in before] == [("FAILURE", "OTEL_ONLY"), (None, "FAILURE")]
    async with spawn_bridge(tmp_path) as again:
        await started(again, "OTEL_ONLY")
        after = (await again.call("get_capture_reliability_status"))["transitions"]
    assert after[1:] == before  # the bridge's own stop recorded no mode change
    assert (after[0]["fromMode"], after[0]["toMode"]) == (None, "OTEL_ONLY")


async def test_gate_is_go_for_a_stable_otel_only_data_dir(tmp_path: Path) -> None:
    config = {"autoIngestEnabled": True, "streamEnrichmentEnabled": False, "otlpReceiver": {"port": 0}}
    data = tmp_path / "data"
    async with spawn_bridge(tmp_path, config=config) as host:
        await started(host, "OTEL_ONLY")
        early = await host.call("get_release_gate", {"stableSeconds": 600})
        assert early["verdict"] == "no_go"
        assert [c["name"] for c in early["checks"] if not c["ok"]] == ["mode_stable"]
        await anyio.sleep(1.2)
        gate = await host.call("get_release_gate", {"windowHours": 1, "stable_seconds": 1})
        assert gate["verdict"] == "go", gate
        assert gate["windowHours"] == 1
        # the CLI reads the same history next to the running bridge
        code, out, err = await cli(tmp_path, "gate", "--data-dir", str(data), "--json", "--stable-seconds", "1")
        assert code == 0, (out, err)
        assert json.loads(out)["verdict"] == "go"
        code, out, _ = await cli(tmp_path, "status", "--data-dir", str(data), "--json")
        running = json.loads(out)
        assert code == 0 and running["bridgeRunning"] and running["mode"] == "OTEL_ONLY"
        assert running["reasons"][0].startswith("streamEnrichmentEnabled is false")
        with pytest.raises(HostError) as info:
            await host.call("get_release_gate", {"windowHours": 0})
        assert info.value.code == -32602
    code, out, err = await cli(tmp_path, "gate", "--data-dir", str(data), "--stable-seconds", "1")
    assert code == 0, (out, err)
    assert out.startswith("GO") and "no bridge running" in out
    code, out, _ = await cli(tmp_path, "status", "--data-dir", str(data))
    assert code == 0 and "OTEL_ONLY" in out and "not running" in out


async def test_gate_is_no_go_after_a_failure_in_the_window(tmp_path: Path) -> None:
    config = {"autoIngestEnabled": False, "streamEnrichmentEnabled": False, "otlpReceiver": {"port": 0}}
    data = tmp_path / "data"
    async with spawn_bridge(tmp_path, config=config) as host:
        await started(host, "FAILURE")
        await host.call("set_ingest_config", {"autoIngestEnabled": True})
        assert transitions(host)[-1] == ("FAILURE", "OTEL_ONLY")
    code, out, err = await cli(tmp_path, "gate", "--data-dir", str(data), "--json", "--stable-seconds", "0")
    assert code == 1, (out, err)
    result = json.loads(out)
    failed = {c["name"]: c["detail"] for c in result["checks"] if not c["ok"]}
    assert list(failed) == ["no_failure_in_window"], failed
    assert "autoIngestEnabled is false" in failed["no_failure_in_window"]
    assert "No-Go (no_failure_in_window)" in err


async def test_crash_loop_makes_the_gate_no_go(tmp_path: Path) -> None:
    config = {"autoIngestEnabled": True, "otlpReceiver": {"port": 0}, "codex": fake("crash_on_start")}
    data = tmp_path / "data"
    async with spawn_bridge(tmp_path, config=config) as host:
        await started(host, "DEGRADED_STREAMING")
        with pytest.raises(HostError) as info:
            await host.call("start_codex_app_server")
        assert info.value.code == -32015
        await host.wait_for("codex-app-server-status", lambda p: p["state"] == "crash_loop", timeout=30)
        status = await host.call("get_capture_reliability_status")
        assert "crash_loop" in status["reasons"][0]
        gate = await host.call("get_release_gate", {"stableSeconds": 0})
        assert gate["verdict"] == "no_go"
        crash = next(c for c in gate["checks"] if c["name"] == "no_crash_loop_in_window")
        assert not crash["ok"] and "crash_loop" in crash["detail"]
        code, out, _ = await cli(tmp_path, "gate", "--data-dir", str(data), "--json")
        assert code == 1
        checks = {c["name"]: c for c in json.loads(out)["checks"]}
        assert not checks["no_crash_loop_in_window"]["ok"]
    code, out, _ = await cli(tmp_path, "status", "--data-dir", str(data))
    assert code == 0 and "crash_loop" in out


async def test_cli_without_a_data_dir_says_why(tmp_path: Path) -> None:
    missing = str(tmp_path / "nowhere")
    code, out, err = await cli(tmp_path, "gate", "--data-dir", missing)
    assert code == 2 and "no capture-bridge data dir" in err and out == ""
    code, out, err = await cli(tmp_path, "status", "--data-dir", missing)
    assert code == 1 and "no capture-bridge data dir" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out, err = await cli(tmp_path, "gate", "--data-dir", str(empty), "--json")
    assert code == 1
    checks = {c["name"]: c for c in json.loads(out)["checks"]}
    assert not checks["mode_stable"]["ok"] and "no capture mode was ever recorded" in checks["mode_stable"]["detail"]
