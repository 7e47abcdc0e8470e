"""Config values are checked before they are kept, secrets come back masked, files are private.

All against the real ``capture-bridge serve``, as the host talks to it.
"""

from __future__ import annotations

import json
import socket
import stat
from pathlib import Path
from typing import Any

import pytest

from tests.support.host import Host, HostError, spawn_bridge

API_KEY = "sk-guard-config-0123456789abcdef"
BEARER = "Bearer guard-header-secret-0123456789"


def on_disk(host: Host) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((host.data_dir / "config.json").read_text())
    return data


async def refused(host: Host, patch: dict[str, Any]) -> HostError:
    with pytest.raises(HostError) as caught:
        await host.call("set_ingest_config", patch)
    assert caught.value.code == -32602, caught.value
    return caught.value


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"codex": {"binaryPath": "/" + "x/" * 2500}}, "codex.binaryPath"),
        ({"codex": {"binaryPath": "bin/codex"}}, "codex.binaryPath"),
        ({"codex": {"home": "/tmp/" + "h" * 300}}, "codex.home"),
        ({"otlpReceiver": {"host": "\u202e\u0000"}}, "otlpReceiver.host"),
        ({"otlpReceiver": {"host": "0.0.0.0"}}, "otlpReceiver.host"),
        ({"otlpReceiver": {"host": "example.com"}}, "otlpReceiver.host"),
        ({"codex": {"args": ["app-server", "-c", "x=\u0000"]}}, "codex.args[2]"),
        ({"codex": {"env": {"A=B": "1"}}}, "codex.env"),
        ({"codex": {"env": {"OPENAI_API_KEY": "x" * 9000}}}, "codex.env.OPENAI_API_KEY"),
        ({"export": {"headers": {"x-trace": "a\r\nInjected: 1"}}}, "export.headers.x-trace"),
        ({"export": {"endpoint": "http://[::1"}}, "export.endpoint"),
        ({"transcript": {"path": "relative.jsonl"}}, "transcript.path"),
    ],
)
async def test_a_bad_value_is_32602_naming_it_and_is_not_kept(
    tmp_path: Path, patch: dict[str, Any], field: str
) -> None:
    async with spawn_bridge(tmp_path, config={"otlpReceiver": {"port": 0}}) as host:
        await host.call("bridge_info")
        before = on_disk(host)
        error = await refused(host, patch)
        assert error.data["field"] == field and field in error.message, error.message
        assert "x" * 100 not in error.message  # the value itself is never quoted
        assert on_disk(host) == before
        assert (await host.call("get_ingest_config"))["otlpReceiver"]["host"] == "127.0.0.1"
        # Nothing broke: the receiver still listens, a start names its real problem (not -32603).
        status = await host.call("get_otlp_receiver_status")
        assert status["state"] == "listening", status
        info = await host.call("bridge_info")
        assert info["pid"] == host.pid


async def test_a_long_binary_path_never_reaches_start_as_an_internal_error(tmp_path: Path) -> None:
    async with spawn_bridge(tmp_path, config={"codex": {"binaryPath": "/nowhere/codex"}}) as host:
        await host.call("bridge_info")
        await refused(host, {"codex": {"binaryPath": "/" + "a" * 5000}})
        with pytest.raises(HostError) as caught:
            await host.call("start_codex_app_server")
        assert caught.value.code == -32015 and "/nowhere/codex" in caught.value.message


async def test_a_config_file_with_a_bad_value_is_refused_at_start(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "config.json").write_text(json.dumps({"otlpReceiver": {"host": "0.0.0.0", "port": 0}}))
    async with spawn_bridge(tmp_path, data_dir=data, config=None) as host:
        code = await host.wait_exit(10)
        assert code == 1 and "otlpReceiver.host" in host.stderr()


async def test_a_receiver_address_that_cannot_be_bound_is_not_kept(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        async with spawn_bridge(tmp_path, config={"otlpReceiver": {"port": 0}}) as host:
            await host.call("set_ingest_config", {})  # config.json now holds every field
            before = on_disk(host)
            error = await refused(host, {"otlpReceiver": {"port": port}})
            assert error.data["field"] == "otlpReceiver.port" and str(port) in error.message
            assert on_disk(host) == before
            status = await host.call("get_otlp_receiver_status")
            assert status["state"] == "listening" and not status["endpoint"].endswith(f":{port}")


async def test_secrets_come_back_masked_and_the_mask_keeps_them(tmp_path: Path) -> None:
    async with spawn_bridge(tmp_path, config={"otlpReceiver": {"port": 0}}) as host:
        await host.call("bridge_info")
        patch = {
            "codex": {"env": {"OPENAI_API_KEY": API_KEY, "RUST_LOG": "info"}},
            "export": {"headers": {"Authorization": BEARER, "x-tenant": "t1"}},
        }
        answer = await host.call("set_ingest_config", patch)
        read = await host.call("get_ingest_config")
        for shown in (answer, read):
            assert shown["codex"]["env"] == {"OPENAI_API_KEY": "[REDACTED]", "RUST_LOG": "info"}
            assert shown["export"]["headers"] == {"Authorization": "[REDACTED]", "x-tenant": "t1"}
        stored = on_disk(host)
        assert stored["codex"]["env"]["OPENAI_API_KEY"] == API_KEY
        assert stored["export"]["headers"]["Authorization"] == BEARER
        # A host writes back what it read, with one field edited: the secrets stay.
        read["retentionDays"] = 7
        await host.call("set_ingest_config", read)
        stored = on_disk(host)
        assert stored["retentionDays"] == 7
        assert stored["codex"]["env"]["OPENAI_API_KEY"] == API_KEY
        assert stored["export"]["headers"]["Authorization"] == BEARER
        # A new secret value replaces the stored one.
        await host.call("set_ingest_config", {"codex": {"env": {"OPENAI_API_KEY": API_KEY + "-2"}}})
        assert on_disk(host)["codex"]["env"]["OPENAI_API_KEY"] == API_KEY + "-2"
        # The mask under a name with nothing stored is refused, not stored.
        error = await refused(host, {"codex": {"env": {"OTHER_API_KEY": "[REDACTED]"}}})
        assert error.data["field"] == "codex.env.OTHER_API_KEY"
        assert "OTHER_API_KEY" not in on_disk(host)["codex"]["env"]
        frames = json.dumps(host.frames)
        assert API_KEY not in frames and BEARER not in frames
        assert API_KEY not in host.stderr()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_the_data_dir_and_what_it_holds_are_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    transcript = data / "transcripts" / "session.jsonl"
    transcript.parent.mkdir()
    transcript.write_text("")
    transcript.chmod(0o644)  # one found from before is made private too
    config = {"otlpReceiver": {"port": 0}}
    async with spawn_bridge(tmp_path, config=config, args=("--transcript", str(transcript))) as host:
        await host.call("bridge_info")
        await host.call("set_ingest_config", {"retentionDays": 9})  # writes config.json and the store
        await host.call("list_captured_threads")
        files = {
            "data dir": (host.data_dir, 0o700),
            "store": (host.data_dir / "capture.sqlite3", 0o600),
            "store WAL": (host.data_dir / "capture.sqlite3-wal", 0o600),
            "store SHM": (host.data_dir / "capture.sqlite3-shm", 0o600),
            "config": (host.data_dir / "config.json", 0o600),
            "transcript": (transcript, 0o600),
        }
        seen = {name: oct(mode(path)) for name, (path, _) in files.items()}
        assert seen == {name: oct(want) for name, (_, want) in files.items()}, seen

