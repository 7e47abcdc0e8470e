"""First answer after spawn: ``bridge_info`` vs a bare Python process that reads one line and answers.

Both are spawned the same way (the venv's interpreter, pipes, a fresh data dir
for the bridge), alternately, ``spawns`` times each; the row is the bridge's
median, the target three times the bare process's median of the same run.
"""

from __future__ import annotations

import sys

from harness import Context, Row, bridge_env, le, median, serve_argv, time_to_answer, write_config

NAME = "first answer"
METRIC = "first answer after spawn (median)"
REFERENCE = "bare Python answer after spawn (median)"
METRICS = (METRIC, REFERENCE)
FACTOR = 3.0

BARE = (
    "import sys\n"
    "sys.stdin.buffer.readline()\n"
    'sys.stdout.buffer.write(b\'{"jsonrpc":"2.0","id":1,"result":{}}\\n\')\n'
    "sys.stdout.buffer.flush()\n"
)


def run(ctx: Context) -> list[Row]:
    bridge_ms: list[float] = []
    bare_ms: list[float] = []
    request = b'{"jsonrpc":"2.0","id":1,"method":"bridge_info"}\n'
    for n in range(ctx.sizes.spawns):
        work = ctx.fresh_dir(f"first-answer-{n}")
        env = bridge_env(work)
        bare_ms.append(time_to_answer([sys.executable, "-c", BARE], request, env))
        write_config(work / "data", {})
        bridge_ms.append(time_to_answer(serve_argv(work / "data"), request, env))
    bridge, bare = median(bridge_ms), median(bare_ms)
    note = f"{len(bridge_ms)} spawns each; bridge worst {max(bridge_ms):.0f} ms, {bridge / bare:.1f}x bare"
    return [
        Row(METRIC, round(bridge, 1), "ms", f"<= {FACTOR:.0f}x bare = {FACTOR * bare:.0f} ms",
            le(bridge, FACTOR * bare), note),
        Row(REFERENCE, round(bare, 1), "ms", note=f"worst {max(bare_ms):.0f} ms"),
    ]  # fmt: skip
