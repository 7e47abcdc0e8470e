"""Imports flow one way: no two packages of bridge/ import each other, directly or in a ring."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

BRIDGE = Path(__file__).resolve().parents[1] / "bridge"
IMPORT = re.compile(r"^\s*(?:from|import) bridge\.(\w+)|^\s*from bridge import (\w+)", re.M)


def package_graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    modules = {p.stem for p in BRIDGE.glob("*.py")} | {p.name for p in BRIDGE.iterdir() if p.is_dir()}
    for path in BRIDGE.rglob("*.py"):
        rel = path.relative_to(BRIDGE).parts
        unit = rel[0] if len(rel) > 1 else path.stem
        for a, b in IMPORT.findall(path.read_text()):
            target = a or b
            if target in modules and target != unit:
                edges[unit].add(target)
    return edges


def test_packages_form_no_cycle() -> None:
    graph = package_graph()
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            assert state.get(nxt) != 1, f"import cycle: {' -> '.join([*path, nxt])}"
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])


def test_subsystems_never_import_the_host() -> None:
    graph = package_graph()
    offenders = sorted(unit for unit, targets in graph.items() if "host" in targets and unit not in ("cli",))
    assert offenders == [], f"{offenders} import bridge.host (hand them callables instead)"
