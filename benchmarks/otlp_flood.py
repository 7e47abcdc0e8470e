"""The OTLP receiver under a telemetry flood while the stream runs at 1,000 frames/s.

The stream is the event-lag scenario's (frames paced at 1,000 a second,
write times noted). Once it runs, ``otlp_sender.py`` (its own process) posts protobuf log
batches of 100 codex records over two kept-alive connections to the bridge's
receiver (``autoIngestEnabled`` on, so every record is decoded, keyed and
stored) for ``otlp_seconds``. Records/s counts records in 200 answers over
the sender's window; the lags are those of the frames written within it. The note
says what a stored record cost in CPU: the decoder process's (all of it: it starts
with the first request) and the bridge's (over the sender's run), per record stored.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from harness import (
    BENCH,
    BenchError,
    Bridge,
    Context,
    Row,
    ge,
    lags_ms,
    le,
    percentile,
    proc_children,
    proc_cmdline,
    proc_cpu_seconds,
    standin_config,
)

NAME = "OTLP flood"
RATE = 1000
RECORDS = "OTLP receiver records/s while streaming 1,000 frames/s"
P50 = "event lag p50 during the OTLP flood"
P99 = "event lag p99 during the OTLP flood"
METRICS = (RECORDS, P50, P99)
TARGET = 20_000
WARM_S = 1.0


def _decoder_cpu(bridge_pid: int) -> float:
    """CPU seconds of the bridge's OTLP decoder process (0 when there is none)."""
    return sum(proc_cpu_seconds(pid) for pid in proc_children(bridge_pid) if "decoder" in proc_cmdline(pid))


def run(ctx: Context) -> list[Row]:
    seconds = ctx.sizes.otlp_seconds
    total = int(RATE * (WARM_S + seconds + 2.0))
    work = ctx.fresh_dir("otlp-flood")
    stamps = work / "stamps.bin"
    config = standin_config(work, frames=total, rate=RATE, stamps=stamps)
    with Bridge(ctx, work, config, profile="otlp-flood", track_live=True) as bridge:
        bridge.start_sidecar()
        endpoint = bridge.call("get_otlp_receiver_status")["endpoint"]
        if not endpoint:
            raise BenchError("the OTLP receiver is not listening")
        key = (bridge.data_dir / "otlp.key").read_text().strip()
        bridge.call("codex_app_server_thread_start", {})
        bridge.wait_live(1, timeout=60)
        time.sleep(WARM_S)
        # "--key=…": a key may begin with "-" (token_urlsafe), which argparse would take for an option
        argv = [sys.executable, str(BENCH / "otlp_sender.py"), "--endpoint", endpoint, f"--key={key}",
                "--seconds", str(seconds), "--batch", "100", "--connections", "2"]  # fmt: skip
        bridge_cpu = proc_cpu_seconds(bridge.pid)
        sent = subprocess.run(argv, capture_output=True, timeout=seconds * 5 + 60, check=False)
        bridge_cpu = proc_cpu_seconds(bridge.pid) - bridge_cpu
        decoder_cpu = _decoder_cpu(bridge.pid)  # it starts with the first request: all of its CPU is the flood's
        if sent.returncode != 0:
            raise BenchError(f"otlp_sender failed: {sent.stderr.decode(errors='replace')[-1500:]}")
        report = json.loads(sent.stdout)
        bridge.wait_live(total, timeout=total / RATE * 3 + 60)
        stored = bridge.call("get_otlp_receiver_status")["recordsStored"]
        other = bridge.other_live
        lags = lags_ms(bridge.lags(stamps), report["startNs"], report["endNs"])
    window = (report["endNs"] - report["startNs"]) / 1e9
    records = report["records"] / window
    per_record = f"CPU a record: decoder {decoder_cpu / stored * 1e6:.0f} us, bridge {bridge_cpu / stored * 1e6:.0f} us"
    note = f"answers {report['statuses']}, {stored:,} records stored, {other:,} OTEL live events; {per_record}"
    lag_note = f"{len(lags):,} frames inside the flood; max {max(lags):.1f} ms"
    return [
        Row(RECORDS, round(records), "records/s", f">= {TARGET:,}", ge(records, TARGET), note),
        Row(P50, round(percentile(lags, 50), 3), "ms", "<= 1 ms", le(percentile(lags, 50), 1.0), lag_note),
        Row(P99, round(percentile(lags, 99), 3), "ms", "<= 5 ms", le(percentile(lags, 99), 5.0), lag_note),
    ]
