"""Shared harness of the fuzz tests: hypothesis budgets and one long-lived real bridge per property.

Budgets are hypothesis profiles: ``ci`` (the default, sized so the fuzz part of
``make test`` stays near a minute on 2 cores) and ``long`` (``make fuzz``,
``HYPOTHESIS_PROFILE=long``). Every property drives a real ``capture-bridge
serve`` through the project's host client. The process is shared by all the
examples of a run (spawning one per example would cost a second each); when an
example kills it, the next example gets a fresh one, so hypothesis shrinks
towards the example that really kills it instead of "anything, on a dead
process".
"""

from __future__ import annotations

import itertools
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, settings

from bridge.framing import Framing
from tests.support.host import Host, spawn_bridge

T = TypeVar("T")

_COMMON: dict[str, Any] = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    "print_blob": True,
}
# CI explores the same examples every run (a red CI must be reproducible); `make fuzz` explores afresh.
settings.register_profile("ci", derandomize=True, **_COMMON)
settings.register_profile("long", **_COMMON)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
LONG = PROFILE == "long"
RSS_SLACK_BYTES = 50 * 1024 * 1024


def budget(ci: int, long: int) -> settings:
    """Settings for one property: ``ci`` examples by default, ``long`` under ``make fuzz``."""
    return settings(settings.get_profile(PROFILE), max_examples=long if LONG else ci, database=None)


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def answers_by_id(host: Host) -> Counter[Any]:
    """How often each id was answered so far (batch answers counted element by element)."""
    counts: Counter[Any] = Counter()
    for frame in host.frames:
        for message in frame if isinstance(frame, list) else [frame]:
            if isinstance(message, dict) and ("result" in message or "error" in message):
                counts[_key(message.get("id"))] += 1
    return counts


def _key(value: Any) -> Any:
    return ("s", value) if isinstance(value, str) else ("i", value)


def answers(host: Host, msg_id: Any) -> list[dict[str, Any]]:
    found = []
    for frame in host.frames:
        for message in frame if isinstance(frame, list) else [frame]:
            is_answer = isinstance(message, dict) and ("result" in message or "error" in message)
            if is_answer and _key(message.get("id")) == _key(msg_id):
                found.append(message)
    return found


class LiveBridge:
    """A real bridge shared by the examples of one property run (respawned if an example kills it)."""

    def __init__(
        self, portal: BlockingPortal, tmp_path: Path, config: dict[str, Any], framing: Framing, env: dict[str, str]
    ) -> None:
        self.portal = portal
        self.tmp_path = tmp_path
        self.config = config
        self.framing: Framing = framing
        self.env = env
        self.host: Host | None = None
        self._cm: AbstractContextManager[Host] | None = None
        self.spawns = 0
        self.deaths: list[str] = []
        self.start_rss = 0
        self.ids = itertools.count(1_000_000)
        self.endpoint = ""  # the OTLP receiver, for the properties that post to it

    # -- the process ---------------------------------------------------------------------------
    def start(self) -> Host:
        self.spawns += 1
        run_dir = self.tmp_path / f"run{self.spawns}"
        run_dir.mkdir()
        self._cm = self.portal.wrap_async_context_manager(
            spawn_bridge(run_dir, config=self.config, framing=self.framing, env=self.env)
        )
        host = self._cm.__enter__()
        self.host = host
        self.call("bridge_info")
        self.call("get_capture_reliability_status")  # the subsystems are up
        return host

    def alive(self) -> bool:
        host = self.host
        return host is not None and host.process.returncode is None and not host.eof

    def ensure(self) -> Host:
        """The running bridge; a fresh one if the last example killed it (the death is recorded)."""
        if self.host is not None and not self.alive():
            self.deaths.append(self.host.stderr()[-2000:])
            self.stop()
        if self.host is None:
            return self.start()
        return self.host

    def condemn(self) -> None:
        """The bridge stopped answering: kill it so the next example gets a fresh one (and fails on its own)."""
        if self.host is not None and self.host.process.returncode is None:
            self.host.process.kill()
            self.portal.call(self.host.process.wait)

    def stop(self) -> None:
        cm, self._cm, self.host = self._cm, None, None
        if cm is not None:
            cm.__exit__(None, None, None)

    def rss(self) -> int:
        assert self.host is not None
        return rss_bytes(self.host.pid)

    # -- talking -------------------------------------------------------------------------------
    def run(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        return self.portal.call(fn, *args)

    def call(self, method: str, params: dict[str, Any] | None = None, timeout: float = 30.0) -> Any:
        assert self.host is not None
        return self.portal.call(lambda: self.host.call(method, params, timeout))  # type: ignore[union-attr]

    def request_id(self) -> str:
        return f"fz-{next(self.ids)}"

    def request(self, method: str, params: dict[str, Any] | None = None, timeout: float = 30.0) -> dict[str, Any]:
        """Send one request and return its whole answer (result or error)."""
        host = self.ensure()
        msg_id = f"fz-{next(self.ids)}"
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": msg_id, "method": method}
        if params is not None:
            message["params"] = params
        self.portal.call(host.send, message)
        return self.portal.call(host.wait_response, msg_id, timeout)

    def send_raw(self, data: bytes) -> None:
        host = self.ensure()
        self.portal.call(host.send_raw, data)

    def wait_answered(self, ids: list[Any], timeout: float = 10.0) -> None:
        """Wait until each id has at least one answer (or the bridge closed stdout)."""
        host = self.host
        assert host is not None

        async def wait() -> None:
            with anyio.move_on_after(timeout):
                while not host.eof:
                    counts = answers_by_id(host)
                    if all(counts[_key(i)] for i in ids):
                        return
                    await anyio.sleep(0.01)

        self.portal.call(wait)

    def settle_rss(self, timeout: float = 10.0) -> int:
        """The bridge's RSS once it is back within the slack of its start (or the last reading)."""
        end = time.monotonic() + timeout
        rss = self.rss()
        while rss > self.start_rss + RSS_SLACK_BYTES and time.monotonic() < end:
            time.sleep(0.2)
            rss = self.rss()
        return rss


@contextmanager
def live_bridge(
    tmp_path: Path,
    config: dict[str, Any] | None = None,
    framing: Framing = "jsonl",
    env: dict[str, str] | None = None,
) -> Iterator[LiveBridge]:
    """A :class:`LiveBridge` with its own event-loop thread; stopped (and checked alive) at the end."""
    with start_blocking_portal(backend="asyncio") as portal:
        bridge = LiveBridge(portal, tmp_path, config or {}, framing, env or {})
        bridge.start()
        bridge.start_rss = bridge.rss()
        try:
            yield bridge
        finally:
            bridge.stop()


def assert_survived(bridge: LiveBridge) -> None:
    """No example killed the bridge, and its memory came back within 50 MB of its start."""
    assert not bridge.deaths, f"{len(bridge.deaths)} example(s) killed the bridge; last stderr:\n{bridge.deaths[-1]}"
    assert bridge.alive(), "the bridge died after the last example"
    info = bridge.request("bridge_info")
    assert "result" in info, info
    rss = bridge.settle_rss()
    assert rss <= bridge.start_rss + RSS_SLACK_BYTES, f"RSS {rss >> 20} MB, started at {bridge.start_rss >> 20} MB"
