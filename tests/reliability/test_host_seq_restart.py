"""Resuming live events by ``seq`` across a bridge restart.

``seq`` starts at 1 in every bridge process. A host that resumes with the
``sinceSeq`` of an earlier run must be told the bridge restarted, never be
answered an empty (or a wrong) list.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.host import Host, HostError, spawn_bridge

CONFIG: dict[str, Any] = {"autoIngestEnabled": True, "otlpReceiver": {"port": 0}}


async def make_notifications(host: Host, rounds: int) -> int:
    """Raise notifications (receiver restarts) and return the newest seq."""
    for _ in range(rounds):
        await host.call("set_otlp_receiver_enabled", {"enabled": False})
        await host.call("set_otlp_receiver_enabled", {"enabled": True})
    held = await host.call("get_live_events", {"sinceSeq": 0})
    return int(held[-1]["params"]["seq"])


async def test_since_seq_from_before_a_restart_is_answered_bridge_restarted(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    async with spawn_bridge(tmp_path, config=CONFIG, data_dir=data_dir) as first:
        old_run = (await first.call("bridge_info"))["runId"]
        old_last = await make_notifications(first, 10)
    assert old_last > 20

    async with spawn_bridge(tmp_path, data_dir=data_dir) as second:
        info = await second.call("bridge_info")
        assert isinstance(info["runId"], str) and info["runId"] and info["runId"] != old_run
        new_last = await make_notifications(second, 0)
        assert new_last < old_last  # seq started again at 1

        # the old sinceSeq is ahead of everything this run has numbered
        with pytest.raises(HostError) as ahead:
            await second.call("get_live_events", {"sinceSeq": old_last})
        # the old runId, with a sinceSeq this run also has
        with pytest.raises(HostError) as other_run:
            await second.call("get_live_events", {"sinceSeq": 1, "runId": old_run})

        # with this run's id and a seq it numbered, catching up works as before
        caught_up = await second.call("get_live_events", {"sinceSeq": 0, "runId": info["runId"]})
        assert caught_up and caught_up[0]["params"]["seq"] == 1
        newest = caught_up[-1]["params"]["seq"]
        assert await second.call("get_live_events", {"sinceSeq": newest, "runId": info["runId"]}) == []

    for err in (ahead.value, other_run.value):
        assert err.code == -32030
        assert err.data["kind"] == "not_found"
        assert err.data["reason"] == "bridge_restarted"
        assert err.data["runId"] == info["runId"]
        assert isinstance(err.data["lastSeq"], int)
        assert "restarted" in err.message
    assert f"sinceSeq {old_last} is ahead" in ahead.value.message
    assert old_run in other_run.value.message


async def test_since_seq_ahead_in_the_same_run_is_not_an_empty_list(tmp_path: Path) -> None:
    async with spawn_bridge(tmp_path, config=CONFIG) as host:
        last = await make_notifications(host, 1)
        with pytest.raises(HostError) as err:
            await host.call("get_live_events", {"sinceSeq": last + 60})
        assert await host.call("get_live_events", {"sinceSeq": last}) == []
    assert err.value.code == -32030 and err.value.data["reason"] == "bridge_restarted"
