"""Imports flow one way: no two packages of bridge/ import each other, directly or in a ring.

And the shipped package holds only what runs: every module of bridge/ is reached from an entry point
(the ``capture-bridge`` command, or a ``python -m bridge.…`` the Makefile runs), never only from tests.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BRIDGE = ROOT / "bridge"
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


def test_the_receiver_and_the_enrichment_export_stay_apart() -> None:
    """Inbound OTLP (bridge/receiver) and outbound OTLP (bridge/enrichment) are two subsystems, not one."""
    graph = package_graph()
    assert "enrichment" not in graph.get("receiver", set())
    assert "receiver" not in graph.get("enrichment", set())


# ---------------------------------------------------------------- nothing in bridge/ only tests import

# The installed entry points: the console script and ``python -m bridge`` (pyproject, packaging/entry.py).
ENTRY_POINTS = ("bridge.cli", "bridge.__main__")
_DOTTED = re.compile(r"bridge(?:\.\w+)+")
_MAKE_MODULE = re.compile(r"-m (bridge(?:\.\w+)+)")


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_imports(path: Path, root: Path, modules: set[str]) -> set[str]:
    """The bridge modules ``path`` imports, at any depth of its code, or names in a string to import lazily."""
    own = module_name(path, root)
    package = own if path.name == "__init__.py" else own.rpartition(".")[0]
    named: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            named.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            named.add(base)
            named.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _DOTTED.fullmatch(node.value):
            named.add(node.value)  # importlib.import_module("bridge.…"), the CLI's subcommand table, module_argv
    found: set[str] = set()
    for name in named:
        parts = name.split(".")
        found.update(".".join(parts[:i]) for i in range(1, len(parts) + 1) if ".".join(parts[:i]) in modules)
    return found


def unreached_modules(root: Path) -> list[str]:
    """Modules of ``root``/bridge that neither an entry point nor a module the Makefile runs imports."""
    paths = {module_name(p, root): p for p in (root / "bridge").rglob("*.py")}
    modules = set(paths)
    make_entries = set(_MAKE_MODULE.findall((root / "Makefile").read_text()))
    assert make_entries <= modules, f"the Makefile runs modules that do not exist: {sorted(make_entries - modules)}"
    todo = [*ENTRY_POINTS, *make_entries]
    reached: set[str] = set()
    while todo:
        name = todo.pop()
        if name not in reached:
            reached.add(name)
            todo.extend(module_imports(paths[name], root, modules))
    return sorted(modules - reached)


def test_every_bridge_module_is_reached_from_an_entry_point() -> None:
    unreached = unreached_modules(ROOT)
    assert unreached == [], (
        f"{unreached} are shipped in bridge/ but no entry point reaches them (only tests, or nothing, import them): "
        "move test helpers to tests/support/"
    )


def test_the_reach_check_follows_lazy_imports_and_flags_a_module_only_tests_import(tmp_path: Path) -> None:
    files = {
        "Makefile": "schemas:\n\t$(PY) -m bridge.tool out\n",
        "bridge/__init__.py": "",
        "bridge/__main__.py": "from bridge.cli import main\n",
        "bridge/cli.py": "COMMANDS = {'serve': 'bridge.pkg.serve'}\n",
        "bridge/tool.py": "from .pkg import helper\n",
        "bridge/pkg/__init__.py": "",
        "bridge/pkg/serve.py": "def run():\n    from bridge.pkg import used\n",
        "bridge/pkg/used.py": "",
        "bridge/pkg/helper.py": "",
        "bridge/pkg/fake.py": "",
        "tests/test_x.py": "from bridge.pkg import fake\n",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    assert unreached_modules(tmp_path) == ["bridge.pkg.fake"]
