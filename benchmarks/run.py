"""``make bench``: every performance target of the bridge, measured in one run, as one table.

Each scenario is a small module of benchmarks/ with ``NAME``, ``METRICS`` (the
rows it always reports) and ``run(ctx) -> list[Row]``; :data:`SCENARIOS` lists
them in the order they run. Adding a row means adding a module and listing it
here. Every scenario drives the real ``capture-bridge serve`` through real
pipes (a load generator, benchmarks/codex_standin.py, stands in for codex)
and measures any reference it is compared with in the same run.

The table goes to stdout, progress to stderr, and the rows as JSON
(``[{metric, value, unit, target, pass, note?}]``) to
benchmarks/results/latest.json (``--out``). ``pass`` is null for a reference or
a reported-only value. Exit 0 when every target is met, 1 otherwise (a
scenario that fails to measure reports its rows as not met, with the reason).

Sizes: ``--size full`` (the targets' sizes, default), ``quick`` (``make
bench-quick``) or ``tiny`` (the smoke test); ``--set name=value,…`` overrides
single sizes; ``--only NAME,…`` runs some scenarios. ``--profile DIR`` records
each scenario's bridge with py-spy (``pip install -e '.[bench]'``).

Before measuring, the checkout's ``bridge`` package is compiled to bytecode
(``harness.compile_bytecode``), as pip compiles an installed package: without
it, under ``PYTHONDONTWRITEBYTECODE=1``, every spawn compiles the bridge's
sources again. ``--source-only`` skips that step.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import replace
from pathlib import Path
from types import ModuleType

sys.path.insert(0, str(Path(__file__).resolve().parent))

import command_latency
import first_answer
import frozen_start
import hydration
import idle_cpu
import lag
import memory
import otlp_flood
import ready
import throughput
from harness import BENCH, PRESETS, Context, Row, compile_bytecode, size_overrides

SCENARIOS: list[ModuleType] = [
    first_answer,
    frozen_start,
    ready,
    throughput,
    lag,
    command_latency,
    memory,
    idle_cpu,
    otlp_flood,
    hydration,
]
DEFAULT_OUT = BENCH / "results" / "latest.json"


def run_scenario(ctx: Context, scenario: ModuleType) -> list[Row]:
    """The scenario's rows; every declared metric is there even when the scenario failed."""
    ctx.log(f"{scenario.NAME} …")
    started = time.perf_counter()
    try:
        rows: list[Row] = scenario.run(ctx)
    except Exception as exc:
        traceback.print_exc()
        reason = f"not measured: {type(exc).__name__}: {exc}"[:300]
        rows = []
    else:
        reason = "not measured: the scenario did not report it"
    have = {row.metric for row in rows}
    rows += [Row(metric, None, "", None, False, reason) for metric in scenario.METRICS if metric not in have]
    ctx.log(f"{scenario.NAME}: {time.perf_counter() - started:.1f} s")
    return rows


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "?")  # fmt: skip
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, load average {load}"


def fmt(value: float | None) -> str:
    if value is None:
        return "—"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"


def table(rows: list[Row]) -> str:
    head = ("metric", "value", "target", "met", "note")
    body = [(r.metric, f"{fmt(r.value)} {r.unit}".strip(), r.target or "",
             "" if r.passed is None else ("yes" if r.passed else "NO"), r.note or "") for r in rows]  # fmt: skip
    widths = [max(len(line[i]) for line in [head, *body]) for i in range(len(head))]
    out = ["| " + " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + " |",
           "|" + "|".join("-" * (w + 2) for w in widths) + "|"]  # fmt: skip
    out += ["| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |" for line in body]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(PRESETS), default=os.environ.get("BENCH_SIZE", "full"))
    parser.add_argument("--set", default="", help="override sizes: name=value,…")
    parser.add_argument("--only", default="", help="scenario modules to run: lag,memory,…")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where the JSON rows go")
    parser.add_argument("--profile", type=Path, help="record every scenario's bridge with py-spy into this dir")
    parser.add_argument("--keep", action="store_true", help="keep the scenarios' data dirs and logs")
    parser.add_argument(
        "--source-only",
        action="store_true",
        help="do not compile the bridge's bytecode first (what is already in __pycache__ is used)",
    )
    args = parser.parse_args(argv)
    sizes = replace(PRESETS[args.size], **size_overrides(args.set))
    chosen = [s for s in SCENARIOS if not args.only or s.__name__ in args.only.split(",")]
    if args.profile is not None and not shutil.which("py-spy", path=str(Path(sys.executable).parent)):
        parser.error("--profile needs py-spy in the venv: pip install -e '.[bench]'")
    workdir = Path(tempfile.mkdtemp(prefix="capture-bridge-bench-"))
    ctx = Context(sizes, args.size, workdir, args.profile)
    ctx.log(f"size {args.size}; work dir {workdir}; {machine()}")
    if not args.source_only:
        ctx.log(f"bytecode of {compile_bytecode()} bridge modules up to date (as an installed bridge has it)")
    rows: list[Row] = []
    try:
        for scenario in chosen:
            rows += run_scenario(ctx, scenario)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps([r.to_json() for r in rows], indent=2) + "\n")
    met = all(r.passed is not False for r in rows)
    print(f"\nsize: {args.size}; machine: {machine()}\n")
    print(table(rows))
    print(f"\n{sum(r.passed is True for r in rows)} of {sum(r.passed is not None for r in rows)} targets met; "
          f"rows written to {args.out}")  # fmt: skip
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
