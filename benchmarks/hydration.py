"""Thread hydration: a ``hydration_items``-item thread resumed and back-filled while other commands run.

The codex stand-in holds one thread of 10,000 items (500 turns of 20). Two
bursts, one after the other:

- ``codex_app_server_thread_resume``: codex answers with the whole thread,
  which the bridge passes on to the host (redacted);
- ``codex_app_server_request_thread_snapshot``: the back-fill proper —
  ``thread/read`` plus every ``thread/turns/list`` page, reconciled into the
  store, and the thread returned.

While each is in flight the host asks ``get_capture_reliability_status``
every 5 ms, one at a time; the row is the longest any of them waited.
"""

from __future__ import annotations

import time
from typing import Any

from codex_standin import HYDRATED
from harness import BenchError, Bridge, Context, Row, le, ms, standin_config

NAME = "hydration"
RESUME = "thread_resume of the long thread"
RESUME_WAIT = "longest command wait during thread_resume"
SNAPSHOT = "snapshot back-fill of the long thread"
SNAPSHOT_WAIT = "longest command wait during the snapshot back-fill"
METRICS = (RESUME, RESUME_WAIT, SNAPSHOT, SNAPSHOT_WAIT)
LIMIT_MS = 50.0
PROBE_S = 0.005


def burst(bridge: Bridge, method: str) -> tuple[Any, float, list[float]]:
    mid = bridge.request(method, {"threadId": HYDRATED})
    waits = []
    while not bridge.answered(mid):
        _, took = bridge.answer(bridge.request("get_capture_reliability_status"), timeout=120)
        waits.append(ms(took))
        time.sleep(PROBE_S)
    result, took = bridge.answer(mid, timeout=120)
    return result, ms(took), waits


def count_items(turns: list[dict[str, Any]]) -> int:
    return sum(len(t.get("items") or []) for t in turns)


def run(ctx: Context) -> list[Row]:
    items = ctx.sizes.hydration_items
    work = ctx.fresh_dir("hydration")
    with Bridge(ctx, work, standin_config(work, thread_items=items), profile="hydration") as bridge:
        bridge.start_sidecar()
        bridge.call("get_capture_reliability_status")
        resumed, resume_ms, resume_waits = burst(bridge, "codex_app_server_thread_resume")
        snapshot, snapshot_ms, snapshot_waits = burst(bridge, "codex_app_server_request_thread_snapshot")
    got = count_items(resumed["thread"]["turns"]), count_items(snapshot["turns"])
    if got != (items, items):
        raise BenchError(f"expected {items} items back from resume and snapshot, got {got}")
    rows = []
    for label, wait_label, took, waits in ((RESUME, RESUME_WAIT, resume_ms, resume_waits),
                                           (SNAPSHOT, SNAPSHOT_WAIT, snapshot_ms, snapshot_waits)):  # fmt: skip
        longest = max(waits, default=0.0)
        rows.append(Row(label, round(took, 1), "ms", note=f"{items:,} items"))
        rows.append(Row(wait_label, round(longest, 1), "ms", f"<= {LIMIT_MS:.0f} ms", le(longest, LIMIT_MS),
                        f"{len(waits)} status commands during it"))  # fmt: skip
    return rows
