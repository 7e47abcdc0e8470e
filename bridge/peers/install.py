"""Locating (and, when missing, installing) the pinned real peers.

Peers are cached once per machine under ``~/.cache/capture-bridge/peers``
(``$CAPTURE_BRIDGE_PEERS_DIR`` overrides). Installing uses npm, which only
talks to the package registry.
"""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Callable
from pathlib import Path

CODEX_VERSION = "0.169.0"
CODEX_PACKAGE = f"@openai/codex@{CODEX_VERSION}"


def peers_dir() -> Path:
    env = os.environ.get("CAPTURE_BRIDGE_PEERS_DIR")
    if env:
        return Path(env)
    return Path(os.environ.get("HOME", str(Path.home()))) / ".cache" / "capture-bridge" / "peers"


def codex_dir() -> Path:
    return peers_dir() / f"codex-{CODEX_VERSION}"


def _triple() -> tuple[str, str]:
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64"):
        return "codex-linux-x64", "x86_64-unknown-linux-musl"
    if machine in ("aarch64", "arm64"):
        return "codex-linux-arm64", "aarch64-unknown-linux-musl"
    raise RuntimeError(f"no pinned codex build for machine {machine!r}")


def npm_install(target: Path, package: str) -> None:
    """``npm install`` one pinned package into ``target`` (talks only to the registry)."""
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["npm", "install", "--prefix", str(target), "--no-audit", "--no-fund", "--loglevel=error", package],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    (target / ".installed").touch()


def installed_binary(path: Path, install: Callable[[], None], what: str) -> Path:
    """``path``, installing it first when missing; a clear error when it still is."""
    if not path.exists():
        install()
    if not path.exists():
        raise FileNotFoundError(f"{what} is not installed at {path}; run `make peers`")
    return path


def codex_native_binary(install: bool = True) -> Path:
    """The native codex binary (not the Node launcher: see docs/peers.md §1)."""
    package, triple = _triple()
    path = codex_dir() / "node_modules" / "@openai" / package / "vendor" / triple / "bin" / "codex"
    return installed_binary(path, install_codex if install else no_install, f"codex {CODEX_VERSION}")


def no_install() -> None:
    """Installing was not asked for."""


def install_codex() -> None:
    npm_install(codex_dir(), CODEX_PACKAGE)
