"""Command latency while the stream runs at 10,000 frames/s.

The codex stand-in paces ``latency_seconds`` worth of frames at 10,000 a
second; meanwhile the host asks ``get_capture_reliability_status`` every
``probe_interval`` (one at a time, as a UI polling its status would) and
times each from the write of the request to the read of its answer.
"""

from __future__ import annotations

import time

from harness import Bridge, Context, Row, lags_ms, le, ms, percentile, standin_config, stream_rate

NAME = "command latency"
RATE = 10_000
P99 = "command latency p99 while streaming 10,000 frames/s"
P50 = "command latency p50 while streaming 10,000 frames/s"
LAG = "event lag p99 at 10,000 frames/s"
METRICS = (P99, P50, LAG)


def run(ctx: Context) -> list[Row]:
    total = int(RATE * ctx.sizes.latency_seconds)
    work = ctx.fresh_dir("command-latency")
    stamps = work / "stamps.bin"
    config = standin_config(work, frames=total, rate=RATE, stamps=stamps)
    latencies: list[float] = []
    with Bridge(ctx, work, config, profile="command-latency", track_live=True) as bridge:
        bridge.start_sidecar()
        bridge.call("codex_app_server_thread_start", {})
        bridge.wait_live(1, timeout=60)
        deadline = time.monotonic() + ctx.sizes.latency_seconds * 3 + 60
        due = time.monotonic()
        while bridge.live < total and time.monotonic() < deadline:
            _, took = bridge.answer(bridge.request("get_capture_reliability_status"), timeout=60)
            latencies.append(ms(took))
            due += ctx.sizes.probe_interval
            time.sleep(max(0.0, due - time.monotonic()))
        bridge.wait_live(total, timeout=max(1.0, deadline - time.monotonic()))
        lags = lags_ms(bridge.lags(stamps))
        rate = stream_rate(bridge, total)
    p99, p50 = percentile(latencies, 99), percentile(latencies, 50)
    note = f"{len(latencies)} commands over {total:,} frames at {rate:,.0f}/s; max {max(latencies):.1f} ms"
    return [
        Row(P99, round(p99, 3), "ms", "<= 5 ms", le(p99, 5.0), note),
        Row(P50, round(p50, 3), "ms", note=note),
        Row(LAG, round(percentile(lags, 99), 3), "ms", note=f"p50 {percentile(lags, 50):.2f} ms, max {max(lags):.1f}"),
    ]
