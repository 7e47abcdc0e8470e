"""Shared helpers for the transcript tests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "fixtures" / "transcripts"
FAKE_SIDECAR = REPO / "tests" / "fakes" / "fake_sidecar.py"
SCENARIOS = ["chat", "approval", "error-turn", "auth", "restart"]


def contains(expected: Any, actual: Any, where: str = "") -> None:
    """Every field of ``expected`` is in ``actual`` with the same value (shapes may grow)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: {actual!r} is not an object"
        for key, value in expected.items():
            assert key in actual, f"{where}.{key} missing"
            contains(value, actual[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), f"{where}: {actual!r} vs {expected!r}"
        for index, (a, b) in enumerate(zip(expected, actual, strict=True)):
            contains(a, b, f"{where}[{index}]")
    else:
        assert expected == actual, f"{where}: expected {expected!r}, got {actual!r}"


def run_cli(*args: str, stdin: bytes | None = None, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "bridge", *args], input=stdin, capture_output=True, timeout=timeout, cwd=REPO
    )


def transcript_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of a transcript, each of which must be a JSON object."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def fake_codex(directory: Path, mode: str = "normal") -> Path:
    """An executable running the FAKE sidecar in ``mode`` whatever arguments the bridge adds."""
    path = directory / f"fake-codex-{mode}"
    path.write_text(
        f"#!{sys.executable}\nimport os, sys\n"
        f"os.execv(sys.executable, [sys.executable, {str(FAKE_SIDECAR)!r}, {mode!r}, *sys.argv[1:]])\n"
    )
    path.chmod(0o755)
    return path
