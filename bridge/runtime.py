"""How this installation runs itself: from a checkout (``python -m bridge``) or frozen (PyInstaller).

Every place that starts another capture-bridge process (the drill re-running
itself inside the fence, the host client spawning ``serve``, replay's player
standing in for codex) asks here for the command line, so a frozen build
spawns its own executable instead of a ``python -m`` it does not have.
Also the facts ``--version --json`` and the dist manifest report, among them
the Rust target triple Tauri's ``externalBin`` names the entry with.
"""

from __future__ import annotations

import sys
from typing import Any

from bridge import PROTOCOL_VERSION, __version__

# The hidden first argument that makes the executable run one bridge module's ``main(argv)``;
# only for processes the bridge itself starts (replay's player), never for people.
RUN_MODULE = "--run-module"

_ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64", "armv7l": "armv7"}


def frozen() -> bool:
    """True inside a PyInstaller build (``sys.executable`` is the bridge itself, not a Python)."""
    return bool(getattr(sys, "frozen", False))


def bridge_argv(*args: str) -> list[str]:
    """The command line of ``capture-bridge ARGS`` for this installation."""
    if frozen():
        return [sys.executable, *args]
    return [sys.executable, "-m", "bridge", *args]


def module_argv(module: str, *args: str) -> list[str]:
    """The command line that runs ``module.main(ARGS)`` (a ``bridge.*`` module) for this installation."""
    if not module.startswith("bridge."):
        raise ValueError(f"{module!r} is not a bridge module")
    if frozen():
        return [sys.executable, RUN_MODULE, module, *args]
    return [sys.executable, "-m", module, *args]


def run_module(argv: list[str]) -> int:
    """``RUN_MODULE MODULE ARGS…``: import MODULE (a ``bridge.*`` module) and return ``main(ARGS)``."""
    import importlib

    if not argv or not argv[0].startswith("bridge."):
        print(f"capture-bridge: {RUN_MODULE} needs a bridge module name", file=sys.stderr)
        return 2
    module = importlib.import_module(argv[0])
    result: int = module.main(argv[1:])
    return result


def target_triple(system: str | None = None, machine: str | None = None, libc: str | None = None) -> str:
    """The Rust target triple of this platform (what ``rustc -vV`` calls ``host``).

    Tauri finds an ``externalBin`` entry by this suffix. Pure given its
    arguments, so every platform's answer is unit-tested on any machine.
    """
    import platform  # not at import: `serve` reaches this module on its way to the first answer

    system = (system or platform.system()).lower()
    raw = (machine or platform.machine()).lower()
    arch = _ARCH.get(raw, raw)
    if system == "darwin":
        return f"{arch}-apple-darwin"
    if system == "windows":
        return f"{arch}-pc-windows-msvc"
    if system == "linux":
        libc = platform.libc_ver()[0] if libc is None else libc
        env = "gnu" if libc in ("glibc", "") else "musl"
        if arch == "armv7":
            return f"armv7-unknown-linux-{env}eabihf"
        return f"{arch}-unknown-linux-{env}"
    raise ValueError(f"no Rust target triple known for {system}/{raw}")


def version_info() -> dict[str, Any]:
    """What ``capture-bridge --version --json`` prints."""
    import platform

    return {
        "name": "capture-bridge",
        "version": __version__,
        "protocolVersion": PROTOCOL_VERSION,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "targetTriple": target_triple(),
        "frozen": frozen(),
    }
