"""A fresh codex home for a real codex that talks only to the local fake model."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bridge.peers import fence


def codex_config_toml(base_url: str) -> str:
    """config.toml pointing codex at the fake model, with every outbound feature off."""
    return f"""\
model_provider = "local"
model_reasoning_summary = "detailed"
check_for_update_on_startup = false

[model_providers.local]
name = "local fake"
base_url = "{base_url}"
wire_api = "responses"
requires_openai_auth = true
request_max_retries = 1
stream_max_retries = 1
stream_idle_timeout_ms = 20000

[analytics]
enabled = false

[feedback]
enabled = false
"""


@dataclass
class PeerHome:
    home: Path
    codex_home: Path
    workdir: Path
    env: dict[str, str]  # the fenced environment for the peer (HOME, proxies, …)


def make_peer_home(root: Path, base_url: str) -> PeerHome:
    home = root / "home"
    env = fence.peer_env(dict(os.environ), home)
    codex_home = Path(env["CODEX_HOME"])
    (codex_home / "config.toml").write_text(codex_config_toml(base_url))
    workdir = root / "work"
    workdir.mkdir(parents=True, exist_ok=True)
    return PeerHome(home, codex_home, workdir, env)
