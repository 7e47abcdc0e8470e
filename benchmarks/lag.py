"""Event lag at 1,000 frames/s: a frame written by codex → the host has read its live event.

The codex stand-in paces ``lag_seconds`` worth of frames at 1,000 a second and
notes CLOCK_MONOTONIC right before writing each; the host's reader thread
notes when ``read()`` returned each ``session:live:event`` line. The n-th
frame pairs with the n-th event; every frame is one sample (10,000 in the
full run).
"""

from __future__ import annotations

from harness import Bridge, Context, Row, lags_ms, le, percentile, standin_config, stream_rate

NAME = "event lag"
RATE = 1000
P50 = "event lag p50 at 1,000 frames/s"
P99 = "event lag p99 at 1,000 frames/s"
METRICS = (P50, P99)


def run(ctx: Context) -> list[Row]:
    total = int(RATE * ctx.sizes.lag_seconds)
    work = ctx.fresh_dir("lag")
    stamps = work / "stamps.bin"
    config = standin_config(work, frames=total, rate=RATE, stamps=stamps)
    with Bridge(ctx, work, config, profile="lag", track_live=True) as bridge:
        bridge.start_sidecar()
        bridge.call("codex_app_server_thread_start", {})
        bridge.wait_live(total, timeout=ctx.sizes.lag_seconds * 3 + 60)
        lags = lags_ms(bridge.lags(stamps))
        rate = stream_rate(bridge, total)
    p50, p99 = percentile(lags, 50), percentile(lags, 99)
    note = f"{len(lags):,} frames at {rate:,.0f}/s; max {max(lags):.1f} ms"
    return [
        Row(P50, round(p50, 3), "ms", "<= 1 ms", le(p50, 1.0), note),
        Row(P99, round(p99, 3), "ms", "<= 5 ms", le(p99, 5.0), note),
    ]
