"""examples/tauri-host: its TypeScript type-checks against the generated types, its config agrees
with the client, and the protocol the client speaks works against the frozen build."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest

from bridge import PROTOCOL_VERSION
from bridge.host.schemas_types import NOTIFICATIONS
from tests.dist.support import REPO, TRIPLE, Bridge, Frozen, clean_env

EXAMPLE = REPO / "examples" / "tauri-host"
CLIENT = EXAMPLE / "src" / "bridge-client.ts"
TSC = EXAMPLE / "node_modules" / ".bin" / "tsc"
EXIT_LIMIT = 9.0  # the 3 s promise, with 3x slack on a shared machine


def ts_const(name: str) -> str:
    """The right-hand side of ``export const NAME … = …;`` in the client module."""
    match = re.search(rf"export const {name}\b[^=]*=\s*(.*?);\n", CLIENT.read_text(), re.S)
    assert match, f"{name} not found in {CLIENT}"
    return match.group(1)


def required_commands() -> list[str]:
    return re.findall(r'"([a-z_]+)"', ts_const("REQUIRED_COMMANDS"))


def sidecar_capability() -> dict[str, Any]:
    capability = json.loads((EXAMPLE / "src-tauri" / "capabilities" / "default.json").read_text())
    spawn = next(p for p in capability["permissions"] if isinstance(p, dict) and p["identifier"] == "shell:allow-spawn")
    entry: dict[str, Any] = spawn["allow"][0]
    return entry


def tsc(project: Path) -> subprocess.CompletedProcess[str]:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node/npm are not installed: the TypeScript check of examples/tauri-host needs them")
    if not TSC.exists():
        pytest.fail("examples/tauri-host/node_modules is missing: run `make ts-tools` (make test does)")
    return subprocess.run([str(TSC), "--noEmit", "-p", str(project)], capture_output=True, text=True, timeout=300)


def test_the_typescript_client_type_checks_against_the_generated_types() -> None:
    out = tsc(EXAMPLE)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_types_reject_a_misuse(tmp_path: Path) -> None:
    """The check can fail: a wrong field, missing params and a bad config value are errors."""
    client = os.path.relpath(CLIENT.with_suffix(""), tmp_path)
    (tmp_path / "probe.ts").write_text(
        f'import {{ CaptureBridge }} from "{client}";\n'
        "export async function probe(b: CaptureBridge): Promise<void> {\n"
        '  const status = await b.request("get_capture_reliability_status");\n'
        "  console.log(status.noSuchField);\n"
        '  await b.request("get_captured_thread");\n'
        '  await b.request("set_ingest_config", { otlpReceiver: { port: "4318" } });\n'
        "}\n"
    )
    (tmp_path / "tsconfig.json").write_text(
        json.dumps({"extends": str(EXAMPLE / "tsconfig.json"), "include": [], "files": [str(tmp_path / "probe.ts")]})
    )
    out = tsc(tmp_path)
    assert out.returncode != 0
    assert "noSuchField" in out.stdout
    assert "Expected 2 arguments" in out.stdout
    assert "not assignable to type 'number'" in out.stdout


def test_tauri_conf_capability_and_client_name_the_same_sidecar_and_args(frozen: Frozen) -> None:
    conf = json.loads((EXAMPLE / "src-tauri" / "tauri.conf.json").read_text())
    sidecar = json.loads(ts_const("SIDECAR"))
    assert conf["bundle"]["externalBin"] == [sidecar]
    # Tauri looks for <externalBin>-<target triple> next to tauri.conf.json: the frozen entry's name
    assert frozen.entry.name == f"{Path(sidecar).name}-{TRIPLE}"
    entry = sidecar_capability()
    assert entry["name"] == sidecar and entry["sidecar"] is True
    fixed, variable = entry["args"][:2], entry["args"][2]
    assert fixed == ["serve", "--parent-pid"]
    assert re.fullmatch(variable["validator"], str(os.getpid()))
    assert 'return ["serve", "--parent-pid", String(parentPid)];' in CLIENT.read_text()
    assert int(ts_const("PROTOCOL_VERSION")) == PROTOCOL_VERSION
    assert int(ts_const("STOP_GRACE_MS")) == 3000


def test_the_client_protocol_against_the_frozen_build(frozen: Frozen, tmp_path: Path, clean_tmp: Path) -> None:
    """What bridge-client.ts does, step by step, with the args the capability allows."""
    parent = subprocess.Popen(["/bin/sleep", "600"])  # stands in for the Tauri app
    try:
        bridge = Bridge(frozen, tmp_path, clean_tmp, "--parent-pid", str(parent.pid))
        info = bridge.request("bridge_info")["result"]
        assert info["protocolVersion"] == PROTOCOL_VERSION
        assert set(required_commands()) <= set(info["commands"]), "the client requires commands the bridge lacks"
        # typed requests with ids, answered in any order, matched through the pending map
        for mid, method in (
            (10, "get_codex_app_server_status"),
            (11, "list_captured_threads"),
            (12, "get_live_events"),
        ):
            bridge.send({"jsonrpc": "2.0", "id": mid, "method": method, "params": {}})
        answers = {m: bridge.wait_for(lambda msg, m=m: msg.get("id") == m, 30) for m in (10, 11, 12)}
        assert answers[10]["result"]["state"] == "inactive"
        assert answers[11]["result"] == []
        error = bridge.request("get_captured_thread", {"threadId": "nope"})["error"]
        assert error["code"] == -32030 and error["data"]["kind"]
        # notifications are events: each fits its type and seq counts up from 1
        bridge.wait_for(lambda m: m.get("method") == "capture-reliability-transition", 30)
        seqs = []
        for note in bridge.notifications():
            msgspec.convert(note["params"], NOTIFICATIONS[note["method"]])
            seqs.append(note["params"]["seq"])
        assert seqs == list(range(1, len(seqs) + 1))
        # stop(): shutdown, then the exit within the grace the client gives before it kills
        started = time.monotonic()
        assert bridge.request("shutdown")["result"] is None
        assert bridge.wait_exit(EXIT_LIMIT) == 0
        assert time.monotonic() - started < EXIT_LIMIT
    finally:
        parent.kill()
        parent.wait()


def test_staging_puts_the_runtime_beside_the_entry_and_it_runs(frozen: Frozen, tmp_path: Path, clean_tmp: Path) -> None:
    spec = importlib.util.spec_from_file_location("stage_bridge", EXAMPLE / "scripts" / "stage_bridge.py")
    assert spec is not None and spec.loader is not None
    stage_bridge = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stage_bridge)
    binaries = tmp_path / "binaries"
    staged = stage_bridge.stage(frozen.folder, binaries)
    entry = binaries / frozen.manifest["entry"]
    assert entry in staged and (binaries / frozen.manifest["contentsDirectory"]).is_dir()
    out = subprocess.run(
        [str(entry), "--version", "--json"], capture_output=True, text=True, timeout=60,
        env=clean_env(tmp_path / "home", clean_tmp),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["targetTriple"] == TRIPLE


def test_staging_refuses_a_tampered_build(frozen: Frozen, tmp_path: Path) -> None:
    copy = tmp_path / frozen.folder.name
    shutil.copytree(frozen.folder, copy, symlinks=True)
    with (copy / frozen.manifest["entry"]).open("ab") as fh:
        fh.write(b"\0")
    spec = importlib.util.spec_from_file_location("stage_bridge", EXAMPLE / "scripts" / "stage_bridge.py")
    assert spec is not None and spec.loader is not None
    stage_bridge = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stage_bridge)
    with pytest.raises(SystemExit, match="does not match SHA256SUMS"):
        stage_bridge.stage(copy, tmp_path / "binaries")
