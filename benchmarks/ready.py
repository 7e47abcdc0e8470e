"""Ready: the first ``get_capture_reliability_status`` answered after spawn vs importing pygls.

The status needs the subsystems up, so this is how soon the app can show the
capture mode after launch. The reference is a bare Python process that
imports ``pygls.protocol`` (what the bridge's dispatch loads) and then reads
one line and answers: interpreter start plus the pygls import, spawned the
same way in the same run. Target: the bridge within 100 ms of it (medians).
"""

from __future__ import annotations

import sys

from harness import Context, Row, bridge_env, le, median, serve_argv, time_to_answer, write_config

NAME = "ready"
METRIC = "ready: first status answered after spawn (median)"
REFERENCE = "pygls import alone, spawn to answer (median)"
METRICS = (METRIC, REFERENCE)
SLACK_MS = 100.0

PYGLS = (
    "import sys\n"
    "import pygls.protocol\n"
    "sys.stdin.buffer.readline()\n"
    'sys.stdout.buffer.write(b\'{"jsonrpc":"2.0","id":1,"result":{}}\\n\')\n'
    "sys.stdout.buffer.flush()\n"
)


def run(ctx: Context) -> list[Row]:
    ready_ms: list[float] = []
    pygls_ms: list[float] = []
    request = b'{"jsonrpc":"2.0","id":1,"method":"get_capture_reliability_status"}\n'
    for n in range(ctx.sizes.spawns):
        work = ctx.fresh_dir(f"ready-{n}")
        env = bridge_env(work)
        pygls_ms.append(time_to_answer([sys.executable, "-c", PYGLS], request, env))
        write_config(work / "data", {})
        ready_ms.append(time_to_answer(serve_argv(work / "data"), request, env))
    ready, pygls = median(ready_ms), median(pygls_ms)
    return [
        Row(METRIC, round(ready, 1), "ms", f"<= pygls + {SLACK_MS:.0f} = {pygls + SLACK_MS:.0f} ms",
            le(ready, pygls + SLACK_MS), f"{len(ready_ms)} spawns each; worst {max(ready_ms):.0f} ms"),
        Row(REFERENCE, round(pygls, 1), "ms", note=f"worst {max(pygls_ms):.0f} ms"),
    ]  # fmt: skip
