"""The test host is the project's own host client (bridge.client.host)."""

from bridge.client.host import Host, HostError, bridge_argv, bridge_env, spawn_bridge

__all__ = ["Host", "HostError", "bridge_argv", "bridge_env", "spawn_bridge"]
