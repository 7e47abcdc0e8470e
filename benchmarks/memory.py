"""Memory over a long stream: peak RSS of the bridge over ``memory_frames`` frames, and whether it is flat.

The codex stand-in writes the frames as fast as the pipe takes them (the
bridge's back-pressure paces it); a sampler reads the bridge's ``VmRSS``
every 0.2 s next to the number of live events the host has read. Peak is
``VmHWM`` at the end. Flat: every sample taken once half the frames were read
stays within 10 % of the first such sample (MB = 10^6 bytes).
"""

from __future__ import annotations

import threading
import time

from harness import BenchError, Bridge, Context, Row, le, proc_status_kib, standin_config

NAME = "memory"
PEAK = "peak RSS over the long stream run"
DRIFT = "RSS drift from half-way to the end"
DURATION = "long stream run duration"
METRICS = (PEAK, DRIFT, DURATION)
LIMIT_MB = 100.0
DRIFT_PCT = 10.0


def run(ctx: Context) -> list[Row]:
    total = ctx.sizes.memory_frames
    work = ctx.fresh_dir("memory")
    samples: list[tuple[int, int]] = []  # (live events read, RSS KiB)
    done = threading.Event()
    with Bridge(ctx, work, standin_config(work, frames=total), profile="memory") as bridge:
        bridge.start_sidecar()
        idle_kib = proc_status_kib(bridge.pid, "VmRSS")

        def sample() -> None:
            while not done.wait(0.2):
                try:
                    samples.append((bridge.live, proc_status_kib(bridge.pid, "VmRSS")))
                except (OSError, BenchError):
                    return

        sampler = threading.Thread(target=sample, daemon=True)
        started = time.perf_counter()
        bridge.call("codex_app_server_thread_start", {})
        sampler.start()
        try:
            bridge.wait_live(total, timeout=max(300.0, total / 500))
        finally:
            done.set()
            sampler.join()
        elapsed = time.perf_counter() - started
        samples.append((bridge.live, proc_status_kib(bridge.pid, "VmRSS")))
        peak_kib = proc_status_kib(bridge.pid, "VmHWM")
    late = [kib for live, kib in samples if live >= total // 2]
    reference = late[0]
    drift = max(abs(kib - reference) for kib in late) / reference * 100
    peak_mb = peak_kib * 1024 / 1e6
    return [
        Row(PEAK, round(peak_mb, 1), "MB", f"<= {LIMIT_MB:.0f} MB", le(peak_mb, LIMIT_MB),
            f"{total:,} frames; idle before the stream {idle_kib * 1024 / 1e6:.0f} MB"),
        Row(DRIFT, round(drift, 1), "%", f"<= {DRIFT_PCT:.0f} %", le(drift, DRIFT_PCT),
            f"{len(late)} samples from {reference * 1024 / 1e6:.0f} MB; end {late[-1] * 1024 / 1e6:.0f} MB"),
        Row(DURATION, round(elapsed, 1), "s", note=f"{total:,} frames at {total / elapsed:,.0f}/s"),
    ]  # fmt: skip
