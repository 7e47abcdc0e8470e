"""``make demo`` until the drill lands: spawn the real bridge as a host would and show it.

It runs on a fresh temp data dir and ``$HOME``, so nothing of the user's is
touched, and prints the bridge's ``bridge_info`` and effective config.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import anyio

from bridge.client.host import spawn_bridge


async def _demo(root: Path) -> int:
    started = time.perf_counter()
    config = {"otlpReceiver": {"port": 0}, "autoIngestEnabled": True}
    async with spawn_bridge(root, config=config) as host:
        info = await host.call("bridge_info")
        first_ms = (time.perf_counter() - started) * 1000
        print(f"spawned capture-bridge serve (pid {host.pid}); first answer after {first_ms:.0f} ms")
        print("bridge_info:")
        print(json.dumps(info, indent=2))
        print("get_ingest_config:")
        print(json.dumps(await host.call("get_ingest_config"), indent=2))
        await host.call("shutdown")
        code = await host.wait_exit(9)
    print(f"shutdown answered; the bridge exited with code {code}")
    return 0 if code == 0 else 1


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="capture-bridge-demo-") as tmp:
        return anyio.run(_demo, Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
