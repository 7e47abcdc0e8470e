"""The frozen build (``make dist``) run as the Tauri host runs it: no Python, a clean environment."""

from __future__ import annotations

import hashlib
import json
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bridge import PROTOCOL_VERSION, __version__
from bridge.cli import SUBCOMMANDS
from tests.dist.support import REPO, TRIPLE, Bridge, Frozen, clean_env

# Correctness deadlines with 3x slack (the machine is shared): the promise is 3 s and 2 s.
EXIT_LIMIT = 9.0
PARENT_LIMIT = 6.0


def run(
    frozen: Frozen, tmp_path: Path, tmpdir: Path, *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(frozen.entry), *args], capture_output=True, text=True, timeout=timeout,
        env=clean_env(tmp_path / "home", tmpdir), cwd=tmp_path,
    )  # fmt: skip


def assert_nothing_left_in(tmpdir: Path) -> None:
    assert list(tmpdir.iterdir()) == [], f"the frozen bridge left temp files: {list(tmpdir.iterdir())}"


def test_the_folder_and_its_entry_are_named_for_tauri(frozen: Frozen) -> None:
    assert frozen.folder.name == f"capture-bridge-{__version__}-{TRIPLE}"
    assert frozen.entry.name == f"capture-bridge-{TRIPLE}"
    assert frozen.entry.is_file() and frozen.entry.stat().st_mode & 0o111
    assert (frozen.folder / frozen.manifest["contentsDirectory"]).is_dir()


def test_the_manifest_describes_the_build_and_its_checksums_verify(frozen: Frozen) -> None:
    m = frozen.manifest
    assert (m["name"], m["version"], m["protocolVersion"], m["targetTriple"]) == (
        "capture-bridge",
        __version__,
        PROTOCOL_VERSION,
        TRIPLE,
    )
    on_disk = {p.relative_to(frozen.folder).as_posix() for p in frozen.folder.rglob("*") if p.is_file()}
    listed = {f["path"] for f in m["files"]}
    assert listed == on_disk - {"manifest.json", "SHA256SUMS"}
    assert m["entry"] in listed
    for f in m["files"]:
        data = (frozen.folder / f["path"]).read_bytes()
        assert len(data) == f["size"], f["path"]
        assert hashlib.sha256(data).hexdigest() == f["sha256"], f["path"]
    sums = dict(reversed(line.split("  ", 1)) for line in (frozen.folder / "SHA256SUMS").read_text().splitlines())
    assert set(sums) == listed | {"manifest.json"}
    for rel, digest in sums.items():
        assert hashlib.sha256((frozen.folder / rel).read_bytes()).hexdigest() == digest, rel
    check = subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=frozen.folder, capture_output=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_the_build_runs_no_start_up_hook_it_does_not_need(frozen: Frozen) -> None:
    """Each of PyInstaller's runtime hooks for these modules imports them before the first answer."""
    from PyInstaller.archive.readers import CArchiveReader

    scripts = set(CArchiveReader(str(frozen.entry)).toc)
    assert "pyiboot01_bootstrap" in scripts  # the listing is the executable's own
    assert not scripts & {"pyi_rth_inspect", "pyi_rth_pkgutil", "pyi_rth_multiprocessing"}


def test_anyio_finds_its_own_source_so_its_imports_stay_lazy(frozen: Frozen) -> None:
    contents = frozen.folder / frozen.manifest["contentsDirectory"]
    assert (contents / "anyio" / "__init__.py").is_file()


def test_version_json_is_right(frozen: Frozen, tmp_path: Path, clean_tmp: Path) -> None:
    out = run(frozen, tmp_path, clean_tmp, "--version", "--json")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["name"] == "capture-bridge"
    assert info["version"] == __version__
    assert info["protocolVersion"] == PROTOCOL_VERSION
    assert info["python"] == platform.python_version()  # the interpreter it was frozen from
    assert info["platform"] == platform.platform()
    assert info["targetTriple"] == TRIPLE
    assert info["frozen"] is True
    plain = run(frozen, tmp_path, clean_tmp, "--version")
    assert plain.stdout.strip() == f"capture-bridge {__version__} (protocol {PROTOCOL_VERSION}, {TRIPLE})"
    assert_nothing_left_in(clean_tmp)


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_every_subcommand_is_in_the_build(frozen: Frozen, tmp_path: Path, clean_tmp: Path, name: str) -> None:
    out = run(frozen, tmp_path, clean_tmp, name, "--help")
    assert out.returncode == 0, out.stderr
    assert f"capture-bridge {name}" in out.stdout


@pytest.mark.parametrize("framing", ["jsonl", "content-length"])
def test_both_framings_answer(frozen: Frozen, tmp_path: Path, clean_tmp: Path, framing: str) -> None:
    bridge = Bridge(frozen, tmp_path, clean_tmp, framing=framing)  # type: ignore[arg-type]
    try:
        info = bridge.request("bridge_info")["result"]
        assert info["protocolVersion"] == PROTOCOL_VERSION and info["framing"] == framing
        assert "get_capture_reliability_status" in info["commands"]
        status = bridge.request("get_capture_reliability_status")["result"]
        assert status["mode"] in ("HYBRID_ACTIVE", "OTEL_ONLY", "DEGRADED_STREAMING", "FAILURE")
        assert bridge.request("shutdown") == {"jsonrpc": "2.0", "id": 3, "result": None}
        assert bridge.wait_exit(EXIT_LIMIT) == 0
    finally:
        bridge.kill()
    assert_nothing_left_in(clean_tmp)


def timed_exit(bridge: Bridge) -> tuple[int, float]:
    started = time.monotonic()
    try:
        code = bridge.wait_exit(EXIT_LIMIT)
    except subprocess.TimeoutExpired:
        bridge.kill()
        pytest.fail(f"the frozen bridge did not exit within {EXIT_LIMIT} s:\n{bridge.stderr()}")
    return code, time.monotonic() - started


def test_shutdown_exits_0(frozen: Frozen, tmp_path: Path, clean_tmp: Path) -> None:
    bridge = Bridge(frozen, tmp_path, clean_tmp)
    bridge.request("bridge_info")
    assert bridge.request("shutdown")["result"] is None
    code, _ = timed_exit(bridge)
    assert code == 0, bridge.stderr()
    assert_nothing_left_in(clean_tmp)


def test_stdin_eof_exits_0(frozen: Frozen, tmp_path: Path, clean_tmp: Path) -> None:
    bridge = Bridge(frozen, tmp_path, clean_tmp)
    bridge.request("bridge_info")
    assert bridge.proc.stdin is not None
    bridge.proc.stdin.close()
    code, _ = timed_exit(bridge)
    assert code == 0, bridge.stderr()
    assert_nothing_left_in(clean_tmp)


def test_sigterm_ends_it_and_it_is_reaped(frozen: Frozen, tmp_path: Path, clean_tmp: Path) -> None:
    bridge = Bridge(frozen, tmp_path, clean_tmp)
    bridge.request("bridge_info")
    bridge.proc.send_signal(signal.SIGTERM)
    code, _ = timed_exit(bridge)  # a clean 0 is another change's promise; here: it ends, and is reaped
    assert code is not None
    assert not Path(f"/proc/{bridge.proc.pid}").exists()
    assert_nothing_left_in(clean_tmp)


def test_killing_the_parent_ends_it(frozen: Frozen, tmp_path: Path, clean_tmp: Path) -> None:
    parent = subprocess.Popen(["/bin/sleep", "600"])
    try:
        bridge = Bridge(frozen, tmp_path, clean_tmp, "--parent-pid", str(parent.pid))
        bridge.request("bridge_info")
        parent.kill()
        parent.wait()
        started = time.monotonic()
        try:
            bridge.wait_exit(PARENT_LIMIT)
        except subprocess.TimeoutExpired:
            bridge.kill()
            pytest.fail(f"the frozen bridge outlived its parent by {PARENT_LIMIT} s:\n{bridge.stderr()}")
        assert time.monotonic() - started < PARENT_LIMIT
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
    assert_nothing_left_in(clean_tmp)


def test_replay_works_frozen_and_matches_the_checkout(frozen: Frozen, tmp_path: Path, clean_tmp: Path) -> None:
    """replay spawns a bridge and a player in codex's place: both must be the frozen executable."""
    transcript = REPO / "fixtures" / "transcripts" / "approval.jsonl"
    out = run(frozen, tmp_path, clean_tmp, "replay", str(transcript), "--json", timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["threads"], "the frozen replay captured no thread"
    checkout = subprocess.run(
        [sys.executable, "-m", "bridge", "replay", str(transcript), "--json"],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )  # fmt: skip
    assert checkout.returncode == 0, checkout.stderr
    assert out.stdout == checkout.stdout
    assert_nothing_left_in(clean_tmp)


def test_gate_and_status_work_frozen_on_a_served_data_dir(frozen: Frozen, tmp_path: Path, clean_tmp: Path) -> None:
    bridge = Bridge(frozen, tmp_path, clean_tmp)
    assert bridge.request("get_capture_reliability_status")["result"]["mode"] == "FAILURE"
    bridge.request("shutdown")
    assert bridge.wait_exit(EXIT_LIMIT) == 0
    gate = run(frozen, tmp_path, clean_tmp, "gate", "--data-dir", str(bridge.data_dir), "--json")
    assert gate.returncode in (0, 1), gate.stderr  # Go or No-Go: a verdict, not a crash
    assert json.loads(gate.stdout)["verdict"] == ("go" if gate.returncode == 0 else "no_go")
    status = run(frozen, tmp_path, clean_tmp, "status", "--data-dir", str(bridge.data_dir), "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["mode"] == "FAILURE"  # a fresh data dir with autoIngestEnabled off
    assert_nothing_left_in(clean_tmp)


def test_record_migrate_and_claude_env_work_frozen(frozen: Frozen, tmp_path: Path, clean_tmp: Path) -> None:
    line = '{"jsonrpc":"2.0","id":1,"method":"ping"}\n'
    out = subprocess.run(
        [str(frozen.entry), "record", "--out", str(tmp_path / "rec.jsonl"), "--", "/bin/cat"], input=line,
        capture_output=True, text=True, timeout=60, env=clean_env(tmp_path / "home", clean_tmp),
    )  # fmt: skip
    assert out.returncode == 0 and out.stdout == line, out.stderr
    recorded = [json.loads(x) for x in (tmp_path / "rec.jsonl").read_text().splitlines()]
    assert [r["dir"] for r in recorded if "msg" in r] == ["out", "in"]
    migrate = run(frozen, tmp_path, clean_tmp, "migrate", "--dry-run", "--json")
    assert migrate.returncode == 0, migrate.stderr
    assert json.loads(migrate.stdout)["status"]["canonicalRoot"] == str(tmp_path / "home" / ".agents/otel/collector")
    bridge = Bridge(frozen, tmp_path, clean_tmp)
    try:
        bridge.request("bridge_info")  # notifications wait until the host's first frame sets the framing
        bridge.wait_for(lambda m: m.get("method") == "otel-receiver-status", 30)  # the receiver is listening
        env_lines = run(frozen, tmp_path, clean_tmp, "claude-env", "--data-dir", str(bridge.data_dir))
        assert env_lines.returncode == 0, env_lines.stderr
        assert "OTEL_EXPORTER_OTLP_ENDPOINT" in env_lines.stdout
    finally:
        bridge.request("shutdown")
        bridge.wait_exit(EXIT_LIMIT)
    assert_nothing_left_in(clean_tmp)


@pytest.mark.peer
def test_the_drill_runs_frozen_and_ends_in_go(frozen: Frozen, tmp_path: Path, clean_tmp: Path) -> None:
    """The drill spawns the frozen bridge (not python -m) and drives the real codex through it."""
    from bridge.peers import fence
    from bridge.peers.install import peers_dir

    if not fence.isolated():
        pytest.fail("the drill runs the real codex: run it inside the fence (make test)")
    out = subprocess.run(
        [str(frozen.entry), "drill", "--stable-seconds", "1"], capture_output=True, text=True, timeout=240,
        env=clean_env(tmp_path / "home", clean_tmp, CAPTURE_BRIDGE_PEERS_DIR=str(peers_dir())), cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert "verdict: GO" in out.stdout
    assert_nothing_left_in(clean_tmp)


def test_the_receiver_decodes_and_stores_through_the_frozen_decoder(
    frozen: Frozen, tmp_path: Path, clean_tmp: Path
) -> None:
    """The frozen bridge starts its OTLP decoder process as itself (``--run-module``, no Python to run),
    the records land in the telemetry store, and the decoder ends with the bridge."""
    import http.client
    import sqlite3
    from urllib.parse import urlsplit

    from tests.receiver.payloads import claude_logs

    bridge = Bridge(frozen, tmp_path, clean_tmp)
    try:
        bridge.request("set_ingest_config", {"autoIngestEnabled": True})
        endpoint = bridge.request("get_otlp_receiver_status")["result"]["endpoint"]
        key = (bridge.data_dir / "otlp.key").read_text().strip()
        url = urlsplit(endpoint)
        conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=60)
        conn.request("POST", "/v1/logs", claude_logs(1, 2).SerializeToString(),
                     {"content-type": "application/x-protobuf", "x-capture-bridge-key": key})  # fmt: skip
        answer = conn.getresponse()
        assert answer.status == 200, answer.read()
        conn.close()
        status = bridge.request("get_otlp_receiver_status")["result"]
        assert status["recordsStored"] == 2 and status["state"] == "listening", status
    finally:
        bridge.request("shutdown")
        assert bridge.wait_exit(EXIT_LIMIT) == 0
    with sqlite3.connect(bridge.data_dir / "telemetry.sqlite3") as conn_db:
        assert conn_db.execute("SELECT count(*) FROM otel_records").fetchone()[0] == 2
    assert_nothing_left_in(clean_tmp)
