"""Idle CPU: the bridge with its sidecar running and nothing happening, over ``idle_seconds``.

The codex stand-in is started and handshaken but writes nothing; after the
first status answer and a short settle, the bridge process's user + system
CPU time (all its threads, from /proc) is read before and after the window.
"""

from __future__ import annotations

import time

from harness import Bridge, Context, Row, proc_cpu_seconds, standin_config

NAME = "idle CPU"
METRIC = "idle CPU"
METRICS = (METRIC,)
LIMIT_PCT = 1.0


def run(ctx: Context) -> list[Row]:
    work = ctx.fresh_dir("idle")
    seconds = ctx.sizes.idle_seconds
    with Bridge(ctx, work, standin_config(work), profile="idle") as bridge:
        bridge.start_sidecar()
        bridge.call("get_capture_reliability_status")
        time.sleep(min(2.0, seconds))
        cpu0, t0 = proc_cpu_seconds(bridge.pid), time.monotonic()
        time.sleep(seconds)
        cpu1, t1 = proc_cpu_seconds(bridge.pid), time.monotonic()
    pct = (cpu1 - cpu0) / (t1 - t0) * 100
    return [
        Row(METRIC, round(pct, 3), "% of a core", f"< {LIMIT_PCT:.0f} %", pct < LIMIT_PCT,
            f"{cpu1 - cpu0:.2f} s CPU over {t1 - t0:.1f} s, sidecar running"),
    ]  # fmt: skip
