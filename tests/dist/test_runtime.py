"""The spawn helper and the target triple: pure, so every platform's answer is checked here."""

from __future__ import annotations

import sys

import pytest

from bridge import runtime


@pytest.mark.parametrize(
    ("system", "machine", "libc", "triple"),
    [
        ("Linux", "x86_64", "glibc", "x86_64-unknown-linux-gnu"),
        ("Linux", "aarch64", "glibc", "aarch64-unknown-linux-gnu"),
        ("Linux", "x86_64", "musl", "x86_64-unknown-linux-musl"),
        ("Linux", "armv7l", "glibc", "armv7-unknown-linux-gnueabihf"),
        ("Darwin", "arm64", "", "aarch64-apple-darwin"),
        ("Darwin", "x86_64", "", "x86_64-apple-darwin"),
        ("Windows", "AMD64", "", "x86_64-pc-windows-msvc"),
        ("Windows", "ARM64", "", "aarch64-pc-windows-msvc"),
    ],
)
def test_target_triple_is_rusts_name_for_the_platform(system: str, machine: str, libc: str, triple: str) -> None:
    assert runtime.target_triple(system, machine, libc) == triple


def test_an_unknown_system_is_said() -> None:
    with pytest.raises(ValueError, match="no Rust target triple"):
        runtime.target_triple("Plan9", "mips", "")


def test_from_a_checkout_the_bridge_is_run_by_python(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(sys, "frozen", raising=False)
    assert runtime.bridge_argv("serve") == [sys.executable, "-m", "bridge", "serve"]
    assert runtime.module_argv("bridge.transcript.player", "x") == [
        sys.executable,
        "-m",
        "bridge.transcript.player",
        "x",
    ]


def test_frozen_the_bridge_runs_its_own_executable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert runtime.bridge_argv("drill") == [sys.executable, "drill"]
    assert runtime.module_argv("bridge.transcript.player") == [
        sys.executable,
        runtime.RUN_MODULE,
        "bridge.transcript.player",
    ]


def test_only_bridge_modules_can_be_run() -> None:
    with pytest.raises(ValueError):
        runtime.module_argv("os")
    assert runtime.run_module(["os"]) == 2


def test_nothing_in_bridge_spawns_python_m_bridge_by_hand() -> None:
    """Every self-spawn goes through bridge.runtime, or a frozen build would try to run a Python it lacks."""
    from pathlib import Path

    root = Path(runtime.__file__).parent
    offenders = [
        str(p.relative_to(root))
        for p in root.rglob("*.py")
        if p.name != "runtime.py" and '"-m", "bridge' in p.read_text()
    ]
    assert offenders == []
