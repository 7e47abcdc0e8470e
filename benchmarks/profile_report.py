"""Summarise py-spy's collapsed stacks (``--format raw --threads``): where each thread spends its samples.

``make bench-profile`` writes one file per scenario into benchmarks/results/profiles;
``python benchmarks/profile_report.py FILE [--top N] [--idle]`` prints, per thread,
its share of the samples, the functions on top of the stack (self) and the
bridge's functions anywhere on it (inclusive). Idle samples (threads waiting in
``select``/``epoll``/a lock/``read``) are left out unless ``--idle``.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter, defaultdict
from pathlib import Path

IDLE = re.compile(r"^(?:[\w<>]+\.)*(select|poll|epoll|wait|_wait|acquire|read|readinto|sleep|_worker|get|_run) \(")
FRAME = re.compile(r"^(?P<fn>.+?) \((?P<file>[^:()]+)(?::\d+)?\)$")


def short(frame: str) -> str:
    found = FRAME.match(frame)
    if not found:
        return frame
    path = found["file"]
    for marker in ("site-packages/", "/bench/", "python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{found['fn']} ({path})"


def report(path: Path, top: int, idle: bool) -> None:
    threads: Counter[str] = Counter()
    leaf: dict[str, Counter[str]] = defaultdict(Counter)
    inclusive: dict[str, Counter[str]] = defaultdict(Counter)
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        frames = stack.split(";")
        thread = re.sub(r"^thread \(\w+\): ?", "", frames[0]) or "?"
        thread = re.sub(r"\s*\(\d+\)$", "", thread)
        frames = frames[1:]
        if not frames or (not idle and IDLE.match(frames[-1])):
            continue
        n = int(count)
        threads[thread] += n
        leaf[thread][short(frames[-1])] += n
        for name in {short(f) for f in frames if "bridge/" in f}:
            inclusive[thread][name] += n
    total = sum(threads.values()) or 1
    print(f"== {path.name}: {total} busy samples")
    for thread, n in threads.most_common():
        print(f"\n-- {thread}: {n} samples ({n / total:.0%})")
        print("   self:")
        for name, k in leaf[thread].most_common(top):
            print(f"     {k / n:6.1%}  {name}")
        print("   inclusive (bridge/):")
        for name, k in inclusive[thread].most_common(top):
            print(f"     {k / n:6.1%}  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", type=Path, nargs="+")
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--idle", action="store_true", help="keep samples of threads that wait")
    args = parser.parse_args()
    for path in args.files:
        report(path, args.top, args.idle)


if __name__ == "__main__":
    main()
