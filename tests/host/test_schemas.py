"""The committed host schemas are exactly what the code generates (run `make schemas`)."""

from __future__ import annotations

import json
from pathlib import Path

from bridge.host.registry import command_names
from bridge.host.schemas import render_all

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "host"


def test_committed_schemas_match_the_code() -> None:
    wanted = render_all()
    committed = {p.name: p.read_bytes() for p in SCHEMAS.glob("*.json")}
    assert sorted(committed) == sorted(wanted), "run `make schemas`: commands were added or removed"
    for name, data in wanted.items():
        assert committed[name] == data, f"schemas/host/{name} is stale: run `make schemas`"


def test_every_command_has_a_schema_with_params_and_result() -> None:
    for name in command_names():
        schema = json.loads((SCHEMAS / f"{name}.json").read_text())
        assert schema["command"] == name
        assert "params" in schema and "result" in schema


def test_the_command_manifest_is_the_registry() -> None:
    from bridge.host import manifest
    from bridge.host.schemas import render_manifest

    assert list(manifest.COMMANDS) == command_names()
    assert (Path(manifest.__file__).read_text()) == render_manifest(), "run `make schemas`"
