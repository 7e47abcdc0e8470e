"""The capture structs against the JSON Schema the pinned codex generates.

The fenced tests regenerate the schema from the real binary: they fail when a
field a struct relies on is renamed or removed (or turned optional, or changes
primitive type), and when the committed snapshot under schemas/codex/ is stale.
The checker itself is shown to catch each kind of drift on edited copies.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from bridge.capture import codex_events as ev
from bridge.peers import fence
from bridge.peers.install import CODEX_VERSION
from tests.support import schema_check
from tests.support.schema_dump import generate, snapshot_path

_GENERATED: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}


def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any]]:
    """The pinned codex's (ServerNotification, ServerRequest) schemas; fails (not skips) outside the fence."""
    if not fence.isolated():
        pytest.fail(
            "not inside the loopback-only fence: run as "
            "`.venv/bin/python -m bridge.peers.fence -- .venv/bin/pytest tests/capture` "
            f"(interfaces up: {fence.up_interfaces()})"
        )
    if "schemas" not in _GENERATED:
        _GENERATED["schemas"] = generate(tmp_path_factory.mktemp("codex-schema"))
    return _GENERATED["schemas"]


@pytest.fixture(scope="module")
def committed() -> dict[str, Any]:
    snap: dict[str, Any] = json.loads(snapshot_path().read_text())
    return snap


@pytest.mark.peer
def test_structs_match_the_schema_of_the_pinned_codex(tmp_path_factory: pytest.TempPathFactory) -> None:
    notifications, requests = generated(tmp_path_factory)
    assert schema_check.check_all(notifications, requests) == []
    # Every method the codec types is one codex really declares.
    assert set(ev.NOTIFICATIONS) <= set(schema_check.method_definitions(notifications))
    assert set(ev.SERVER_REQUESTS) <= set(schema_check.method_definitions(requests))


@pytest.mark.peer
def test_committed_snapshot_is_what_the_pinned_codex_generates(
    tmp_path_factory: pytest.TempPathFactory, committed: dict[str, Any]
) -> None:
    fresh = json.loads(json.dumps(schema_check.snapshot(*generated(tmp_path_factory), CODEX_VERSION)))
    assert fresh == committed, "schemas/codex is stale: run `python -m tests.support.schema_dump --refresh` fenced"


def test_structs_match_the_committed_snapshot(committed: dict[str, Any]) -> None:
    assert committed["codexVersion"] == CODEX_VERSION
    assert schema_check.check_all(*schema_check.schemas_from_snapshot(committed)) == []
    assert len(committed["notificationMethods"]) >= 80  # about 86 in 0.169.0


def _edit(snap: dict[str, Any], section: str, path: list[str], action: str, value: Any = None) -> dict[str, Any]:
    """A copy of ``snap`` with the node at ``path`` under ``section`` deleted, renamed or replaced."""
    out = copy.deepcopy(snap)
    node = out[section]
    for key in path[:-1]:
        node = node[int(key)] if isinstance(node, list) else node[key]
    last = path[-1]
    if action == "delete":
        del node[last]
    elif action == "rename":
        node[value] = node.pop(last)
    else:
        node[last] = value
    return out


def _item_variant_index(snap: dict[str, Any], item_type: str) -> str:
    variants = snap["notificationDefinitions"]["ThreadItem"]["oneOf"]
    return str(next(i for i, v in enumerate(variants) if v["properties"]["type"]["enum"] == [item_type]))


def test_checker_catches_a_renamed_delta_field(committed: dict[str, Any]) -> None:
    path = ["AgentMessageDeltaNotification", "properties", "delta"]
    edited = _edit(committed, "notificationDefinitions", path, "rename", "text")
    problems = schema_check.check_all(*schema_check.schemas_from_snapshot(edited))
    assert any(p.startswith("item/agentMessage/delta.delta:") and "no longer has it" in p for p in problems), problems


def test_checker_catches_a_removed_item_field(committed: dict[str, Any]) -> None:
    index = _item_variant_index(committed, "commandExecution")
    path = ["ThreadItem", "oneOf", index, "properties", "aggregatedOutput"]
    edited = _edit(committed, "notificationDefinitions", path, "delete")
    problems = schema_check.check_all(*schema_check.schemas_from_snapshot(edited))
    assert any("[commandExecution].aggregatedOutput" in p and "no longer has it" in p for p in problems), problems


def test_checker_catches_a_changed_type(committed: dict[str, Any]) -> None:
    index = _item_variant_index(committed, "commandExecution")
    path = ["ThreadItem", "oneOf", index, "properties", "exitCode"]
    edited = _edit(committed, "notificationDefinitions", path, "replace", {"type": ["string", "null"]})
    problems = schema_check.check_all(*schema_check.schemas_from_snapshot(edited))
    assert any("[commandExecution].exitCode" in p and "string" in p for p in problems), problems


def test_checker_catches_a_field_turned_optional(committed: dict[str, Any]) -> None:
    required = committed["notificationDefinitions"]["TurnError"]["required"]
    edited = _edit(
        committed,
        "notificationDefinitions",
        ["TurnError", "required"],
        "replace",
        [r for r in required if r != "message"],
    )
    problems = schema_check.check_all(*schema_check.schemas_from_snapshot(edited))
    assert any(p.endswith("required by TurnError, optional in codex's schema") for p in problems), problems


def test_checker_catches_a_removed_method_and_item_type(committed: dict[str, Any]) -> None:
    edited = _edit(committed, "requestMethods", ["item/fileChange/requestApproval"], "delete")
    index = _item_variant_index(committed, "reasoning")
    edited = _edit(edited, "notificationDefinitions", ["ThreadItem", "oneOf", index, "properties", "type"], "replace",
                   {"enum": ["thinking"]})  # fmt: skip
    problems = schema_check.check_all(*schema_check.schemas_from_snapshot(edited))
    assert "item/fileChange/requestApproval: codex's schema no longer has this method" in problems
    assert any("[reasoning]: codex's schema no longer has this item type" in p for p in problems), problems


def test_checker_catches_a_nested_struct_field(committed: dict[str, Any]) -> None:
    path = ["TokenUsageBreakdown", "properties", "totalTokens"]
    edited = _edit(committed, "notificationDefinitions", path, "rename", "tokensTotal")
    problems = schema_check.check_all(*schema_check.schemas_from_snapshot(edited))
    assert any(p.startswith("thread/tokenUsage/updated.tokenUsage.") and ".totalTokens:" in p for p in problems), (
        problems
    )


def test_snapshot_is_small() -> None:
    assert snapshot_path().stat().st_size < 512 * 1024
    assert Path(snapshot_path()).parent.name == "codex"
