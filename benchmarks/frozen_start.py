"""First answer of the frozen build: spawn ``make dist``'s executable, time until ``bridge_info`` is answered.

What a desktop app's user waits for: the onedir executable (no Python on the
machine) started with a clean environment, median and worst of N spawns.
``rows(runs)`` gives the benchmark table's rows (measure, value, target, met);
``python benchmarks/frozen_start.py [--spawns N]`` prints them. The build is
made first when missing or stale (``packaging/build.py --if-changed``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# The same target as the checkout's first answer: the host waits for either alike.
TARGET_MS = 150.0


def frozen_entry() -> Path:
    """The current build's entry (built here when missing or stale)."""
    subprocess.run([sys.executable, str(ROOT / "packaging" / "build.py"), "--if-changed", "--quiet"], check=True)
    sys.path.insert(0, str(ROOT))
    from bridge import __version__
    from bridge.runtime import target_triple

    folder = ROOT / "dist" / f"capture-bridge-{__version__}-{target_triple()}"
    return folder / str(json.loads((folder / "manifest.json").read_text())["entry"])


def first_answers(entry: Path, runs: int) -> list[float]:
    """Milliseconds from spawn to the answer to ``bridge_info``, one per spawn."""
    times = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            Path(tmp, "config.json").write_text(json.dumps({"otlpReceiver": {"port": 0}}))
            env = {"PATH": "/usr/bin:/bin", "HOME": tmp, "TMPDIR": tmp}
            started = time.perf_counter()
            proc = subprocess.Popen(
                [str(entry), "serve", "--data-dir", tmp],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=tmp,
            )  # fmt: skip
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(b'{"jsonrpc":"2.0","id":1,"method":"bridge_info"}\n')
            proc.stdin.flush()
            while b'"id":1' not in (line := proc.stdout.readline()):
                if not line:
                    raise RuntimeError("the frozen bridge closed stdout before answering bridge_info")
            times.append((time.perf_counter() - started) * 1000)
            proc.stdin.close()
            proc.wait(timeout=10)
    return times


NAME = "frozen first answer"
METRIC = "first answer after spawn, frozen build (median)"
METRICS = (METRIC,)


def run(ctx: Any) -> list[Any]:
    """The benchmark table's row (``benchmarks/run.py`` lists this module as a scenario)."""
    from harness import Row, le

    times = first_answers(frozen_entry(), ctx.sizes.spawns)
    median = statistics.median(times)
    note = f"{len(times)} spawns of make dist's executable, clean environment; worst {max(times):.0f} ms"
    return [Row(METRIC, round(median, 1), "ms", f"<= {TARGET_MS:.0f} ms", le(median, TARGET_MS), note)]


def rows(runs: int = 10) -> list[tuple[str, str, str, bool | None]]:
    times = first_answers(frozen_entry(), runs)
    median = statistics.median(times)
    return [
        ("first answer, frozen build (make dist), median", f"{median:.0f} ms", f"<= {TARGET_MS:.0f} ms",
         median <= TARGET_MS),
        ("first answer, frozen build, worst", f"{max(times):.0f} ms", "", None),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spawns", type=int, default=10)
    args = parser.parse_args(argv)
    for name, value, target, met in rows(args.spawns):
        mark = "" if met is None else ("yes" if met else "NO")
        print(f"| {name:<48} | {value:>10} | {target:>10} | {mark:>3} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
