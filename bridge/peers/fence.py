"""The fence: real peers run only where nothing but loopback is reachable.

``python -m bridge.peers.fence -- CMD…`` runs CMD inside a fresh network
namespace whose only interface is ``lo`` (``unshare --net``, needs root), so
nothing it starts can reach an address outside 127.0.0.0/8 or ::1. Real-peer
tests call :func:`isolated` and refuse to start a peer when it is false.
:func:`peer_env` and :data:`CODEX_SAFE_ARGS` add the second line of defence of
docs/peers.md §0 (plugins, update checks, analytics off; proxies refusing).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

# A loopback port where nothing listens: every proxied request is refused.
REFUSING_PROXY = "http://127.0.0.1:9"

CODEX_SAFE_ARGS: list[str] = [
    "-c", "features.plugins=false",
    "-c", "check_for_update_on_startup=false",
    "-c", "analytics.enabled=false",
    "-c", "feedback.enabled=false",
]  # fmt: skip


def interfaces() -> list[str]:
    """Names of the network interfaces of *this process's* network namespace.

    ``/sys/class/net`` would show the namespace sysfs was mounted in (after
    ``unshare --net`` that is still the host's), so ask the kernel directly.
    """
    import socket

    try:
        return sorted(name for _, name in socket.if_nameindex())
    except OSError:
        return []


def isolated() -> bool:
    """True when this namespace has no interface but ``lo`` (a loopback-only namespace)."""
    names = interfaces()
    return bool(names) and all(name == "lo" for name in names)


def can_unshare() -> bool:
    return sys.platform.startswith("linux") and os.geteuid() == 0 and shutil.which("unshare") is not None


def fenced_argv(argv: list[str]) -> list[str]:
    """``argv`` wrapped so it runs in a new loopback-only network namespace."""
    return ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "fence", *argv]


def peer_env(base: dict[str, str], home: Path) -> dict[str, str]:
    """Environment for a real peer: own HOME/CODEX_HOME, proxies refusing, no updates."""
    env = dict(base)
    codex_home = home / ".codex"
    codex_home.mkdir(parents=True, exist_ok=True)
    env.update(
        HOME=str(home),
        CODEX_HOME=str(codex_home),
        CLAUDE_CONFIG_DIR=str(home / ".claude"),
        HTTP_PROXY=REFUSING_PROXY,
        HTTPS_PROXY=REFUSING_PROXY,
        http_proxy=REFUSING_PROXY,
        https_proxy=REFUSING_PROXY,
        ALL_PROXY=REFUSING_PROXY,
        NO_PROXY="127.0.0.1,localhost,::1",
        no_proxy="127.0.0.1,localhost,::1",
    )
    return env


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        print("usage: python -m bridge.peers.fence -- CMD [ARGS…]", file=sys.stderr)
        return 2
    if isolated():
        os.environ["CAPTURE_BRIDGE_FENCE"] = "netns"
        os.execvp(argv[0], argv)
    if can_unshare():
        os.environ["CAPTURE_BRIDGE_FENCE"] = "netns"
        wrapped = fenced_argv(argv)
        os.execvp(wrapped[0], wrapped)
    print(
        "fence: cannot create a loopback-only network namespace here (needs root and unshare); "
        "running unfenced, and real-peer tests will refuse to start their peers",
        file=sys.stderr,
    )
    os.environ["CAPTURE_BRIDGE_FENCE"] = "none"
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    raise SystemExit(main())


up_interfaces = interfaces  # the name the tests' messages use
