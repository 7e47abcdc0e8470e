"""get_ingest_config / set_ingest_config through the real bridge (docs/protocol.md §3.7)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.host import HostError, spawn_bridge

DEFAULTS = {
    "autoIngestEnabled": False,
    "streamEnrichmentEnabled": True,
    "streamKillSwitch": False,
    "appServerAuthMode": "chatgpt",
    "codex": {
        "binaryPath": None, "home": None, "args": [], "env": {}, "connection": "spawn",
        "socketPath": None, "requestTimeoutMs": 30000,
    },
    "approvals": {"timeoutMs": 30000},
    "limits": {"maxFrameBytes": 16777216},
    "otlpReceiver": {
        "enabled": True, "host": "127.0.0.1", "port": 4318, "maxBodyBytes": 16777216, "maxRequestsPerSecond": 500,
    },
    "dedup": {"completedContentSource": "app_server_stream"},
    "export": {"endpoint": None, "headers": {}},
    "retentionDays": 30,
    "transcript": {"path": None, "maxBytes": 67108864},
}  # fmt: skip


async def test_defaults_are_the_contract_table(tmp_path: Path) -> None:
    async with spawn_bridge(tmp_path, config={"otlpReceiver": {"enabled": False, "port": 4318}}) as host:
        config = await host.call("get_ingest_config")
    expected = json.loads(json.dumps(DEFAULTS))
    expected["otlpReceiver"]["enabled"] = False
    assert config == expected


async def test_partial_updates_deep_merge_and_persist(tmp_path: Path) -> None:
    base = {"otlpReceiver": {"enabled": False}}
    async with spawn_bridge(tmp_path, config=base) as host:
        await host.call("set_ingest_config", {"codex": {"args": ["-c", "features.plugins=false"]}})
        after = await host.call(
            "set_ingest_config",
            {"codex": {"home": "/tmp/x", "env": {"OPENAI_BASE_URL": "http://127.0.0.1:1"}}, "retention_days": 7},
        )
    assert after["codex"]["args"] == ["-c", "features.plugins=false"]  # kept
    assert after["codex"]["home"] == "/tmp/x"
    assert after["codex"]["env"] == {"OPENAI_BASE_URL": "http://127.0.0.1:1"}  # env keys are not renamed
    assert after["retentionDays"] == 7
    on_disk = json.loads((tmp_path / "data" / "config.json").read_text())
    assert on_disk == after
    async with spawn_bridge(tmp_path) as again:
        assert await again.call("get_ingest_config") == after


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"codex": {"bogus": 1}}, "codex.bogus"),
        ({"nope": True}, "nope"),
        ({"otlpReceiver": {"port": 70000}}, "otlpReceiver.port"),
        ({"limits": {"maxFrameBytes": "big"}}, "limits.maxFrameBytes"),
        ({"appServerAuthMode": "password"}, "appServerAuthMode"),
        ({"codex": {"connection": "teleport"}}, "codex.connection"),
        ({"export": {"endpoint": "ftp://x"}}, "export.endpoint"),
        ({"retentionDays": 0}, "retentionDays"),
        ({"codex": {"args": [1]}}, "codex.args[0]"),
    ],
)
async def test_invalid_values_are_refused_naming_the_dotted_field(
    tmp_path: Path, patch: dict[str, object], field: str
) -> None:
    async with spawn_bridge(tmp_path, config={"otlpReceiver": {"enabled": False}}) as host:
        before = await host.call("get_ingest_config")
        with pytest.raises(HostError) as err:
            await host.call("set_ingest_config", patch)
        assert await host.call("get_ingest_config") == before  # nothing changed
    assert err.value.code == -32602
    assert err.value.data["field"] == field
    assert field in err.value.message


async def test_auth_mode_is_matched_case_insensitively_and_stored_in_codex_spelling(tmp_path: Path) -> None:
    async with spawn_bridge(tmp_path, config={"otlpReceiver": {"enabled": False}}) as host:
        config = await host.call("set_ingest_config", {"app_server_auth_mode": "APIKEY"})
    assert config["appServerAuthMode"] == "apikey"


async def test_invalid_config_file_is_a_clear_startup_error(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "config.json").write_text('{"limits": {"maxFrameBytes": -1}}')
    async with spawn_bridge(tmp_path) as host:
        code = await host.wait_exit(30)
    assert code == 1
    assert "limits.maxFrameBytes" in host.stderr()
