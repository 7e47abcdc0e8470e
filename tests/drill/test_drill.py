"""The drill (`make demo`): the runbook performed for real ends in Go; a crash-looping sidecar ends in No-Go."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.peers import fence

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.peer


def run_drill(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    if not fence.isolated():
        pytest.fail("the drill test runs the real codex: run it inside the fence (make test)")
    from bridge.peers.install import peers_dir

    env = {**os.environ, "HOME": str(tmp_path / "home"), "PYTHONPATH": str(REPO),
           "CAPTURE_BRIDGE_PEERS_DIR": str(peers_dir())}  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "bridge", "drill", "--stable-seconds", "1", *extra],
        capture_output=True, text=True, timeout=240, env=env, cwd=REPO,
    )  # fmt: skip


def test_the_drill_performs_the_runbook_and_ends_in_go(tmp_path: Path) -> None:
    proc = run_drill(tmp_path)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert "inside a loopback-only network namespace" in out
    assert 'appServerAuthMode "apikey"' in out  # the deviation is said
    for step in ("kill switch on", "stop sidecar", "confirm mode", "kill switch off", "re-check mode",
                 "first real turn", "second real turn", "migration dry run"):  # fmt: skip
        assert step in out
    import re

    rows = [line for line in out.splitlines() if re.match(r"\s*[\d.]+s\s{2}(OK|FAIL)", line)]
    modes = [m for line in rows if "get_release_gate" not in line
             for m in re.findall(r"\b(HYBRID_ACTIVE|OTEL_ONLY|DEGRADED_STREAMING|FAILURE)\b", line)]  # fmt: skip
    assert "OTEL_ONLY" in modes and "HYBRID_ACTIVE" in modes and "FAILURE" not in modes
    assert "FAIL " not in out
    assert out.rstrip().endswith("verdict: GO")
    assert "\x1b[" not in out  # plain text when not on a terminal


def test_a_crash_looping_sidecar_ends_in_no_go_naming_crash_loop(tmp_path: Path) -> None:
    crasher = tmp_path / "codex-that-crashes"
    crasher.write_text("#!/bin/sh\necho 'fake codex: crashing on start' >&2\nexit 3\n")
    crasher.chmod(0o755)
    proc = run_drill(tmp_path, "--codex-bin", str(crasher))
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    assert "crash_loop" in out
    gate_lines = [line for line in out.splitlines() if "no_crash_loop_in_window" in line]
    assert gate_lines and "FAIL" in gate_lines[0]
    assert "verdict: NO-GO" in out
