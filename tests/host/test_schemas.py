"""The committed host schemas and TypeScript are exactly what the code generates (run `make schemas`),
and the types they come from describe what the bridge really sends."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest

from bridge.host.registry import REGISTRY, command_names
from bridge.host.schemas import LOOSE_RESULTS, render_all, render_typescript, result_type
from bridge.host.schemas_types import NOTIFICATIONS

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = REPO / "schemas" / "host"
TRANSCRIPTS = sorted((REPO / "fixtures" / "transcripts").glob("*.jsonl"))


def test_committed_schemas_match_the_code() -> None:
    wanted = render_all()
    committed = {p.name: p.read_bytes() for p in SCHEMAS.glob("*.json")}
    assert sorted(committed) == sorted(wanted), "run `make schemas`: commands were added or removed"
    for name, data in wanted.items():
        assert committed[name] == data, f"schemas/host/{name} is stale: run `make schemas`"


def test_committed_typescript_matches_the_code() -> None:
    assert (SCHEMAS / "index.d.ts").read_text() == render_typescript(), "schemas/host/index.d.ts is stale: make schemas"


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


def test_every_notification_method_has_a_schema() -> None:
    schema = json.loads((SCHEMAS / "notifications.json").read_text())
    assert sorted(schema["notifications"]) == sorted(NOTIFICATIONS)
    live = schema["notifications"]["session:live:event"]
    assert sorted(live["discriminator"]["mapping"]) == [
        "ApprovalRequest", "ApprovalResult", "ParserValidationError", "SessionDelta",
    ]  # fmt: skip


def test_every_result_declares_its_type() -> None:
    loose = {name for name in command_names() if REGISTRY[name].result in LOOSE_RESULTS}
    assert loose == set()


def test_no_result_schema_is_an_untyped_object() -> None:
    for name in command_names():
        result = json.loads((SCHEMAS / f"{name}.json").read_text())["result"]
        items = result.get("items", result)
        assert items != {"type": "object"}, f"{name}'s result is an untyped object: give the command a result type"
        assert items is None or {"properties", "$ref", "anyOf", "type"} & set(items), (name, items)


# ------------------------------------------------------------------ against what the bridge really sent


def strict(value: Any, kind: Any, where: str) -> None:
    """``value`` decodes as ``kind`` and has no field the type does not declare (recursively for structs)."""
    try:
        decoded = msgspec.convert(value, kind)
    except msgspec.ValidationError as exc:
        pytest.fail(f"{where}: {exc}")
    _same_fields(value, decoded, where)


def _same_fields(value: Any, decoded: Any, where: str) -> None:
    if isinstance(decoded, msgspec.Struct):
        info = msgspec.structs.fields(decoded)
        declared = {f.encode_name for f in info}
        tag_field = type(decoded).__struct_config__.tag_field
        if tag_field:
            declared.add(tag_field)
        unknown = set(value) - declared
        assert not unknown, f"{where}: {type(decoded).__name__} does not declare {sorted(unknown)}"
        for f in info:
            if f.encode_name in value:
                _same_fields(value[f.encode_name], getattr(decoded, f.name), f"{where}.{f.encode_name}")
    elif isinstance(decoded, list) and isinstance(value, list):
        for i, (v, d) in enumerate(zip(value, decoded, strict=True)):
            _same_fields(v, d, f"{where}[{i}]")


def host_messages() -> list[tuple[str, dict[str, Any], str | None]]:
    """(transcript, message the bridge sent the host, the method of the request it answers)."""
    out = []
    for path in TRANSCRIPTS:
        asked: dict[Any, str] = {}
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if record.get("channel") != "host" or not isinstance(record.get("msg"), dict):
                continue
            msg = record["msg"]
            if record["dir"] == "in" and "method" in msg and "id" in msg:
                asked[msg["id"]] = msg["method"]
            elif record["dir"] == "out":
                out.append((path.name, msg, asked.get(msg.get("id")) if "id" in msg else None))
    return out


def test_the_transcripts_hold_every_kind_of_notification() -> None:
    methods = {m["method"] for _, m, _ in host_messages() if "method" in m}
    assert set(NOTIFICATIONS) <= methods


def test_every_notification_the_bridge_sent_fits_its_type() -> None:
    checked = 0
    for name, msg, _ in host_messages():
        if "method" in msg and "id" not in msg:
            strict(msg["params"], NOTIFICATIONS[msg["method"]], f"{name} {msg['method']} seq {msg['params']['seq']}")
            checked += 1
    assert checked > 50


def test_every_result_the_bridge_sent_fits_its_type() -> None:
    checked: set[str] = set()
    for name, msg, method in host_messages():
        if method is None or "result" not in msg or method not in REGISTRY:
            continue
        kind = result_type(method)
        if kind is None:
            assert msg["result"] is None
        elif kind not in LOOSE_RESULTS:
            strict(msg["result"], kind, f"{name} {method} id {msg['id']}")
        checked.add(method)
    assert {"bridge_info", "get_captured_thread", "list_captured_threads", "codex_app_server_submit_approval",
            "get_codex_app_server_status", "codex_app_server_account_read"} <= checked  # fmt: skip


def test_live_events_fit_the_held_notification_type() -> None:
    """get_live_events answers with whole messages: the same notifications, as held by the notifier."""
    from bridge.host.notify import Notifier

    notifier = Notifier()
    for _, msg, _ in host_messages():
        if "method" in msg and "id" not in msg:
            notifier.emit(msg["method"], {k: v for k, v in msg["params"].items() if k != "seq"})
    held = notifier.since(0)
    assert held
    strict(held, REGISTRY["get_live_events"].result, "get_live_events")


# ------------------------------------------------------------------ emitters the transcripts do not reach


@dataclass
class _Frame:
    method: str
    params: bytes
    emittedAtMs: int | None  # the pipeline reads codex's field name
    line: bytes


async def test_a_parser_validation_error_fits_its_type(tmp_path: Path) -> None:
    import anyio

    from bridge.capture.pipeline import CapturePipeline
    from bridge.capture.store import CaptureStore
    from bridge.store.db import Database

    sent: list[tuple[str, Any]] = []
    pipeline = CapturePipeline(
        CaptureStore(Database(tmp_path / "c.db")), lambda m, p: sent.append((m, p)) or 0, lambda: True
    )
    async with anyio.create_task_group() as tg:
        tg.start_soon(pipeline.run)
        pipeline.feed([_Frame("item/completed", b'{"threadId": 5}', 1, b'{"method":"item/completed"}')])
        await pipeline.drain()
        tg.cancel_scope.cancel()
    problems = [p for m, p in sent if m == "session:live:event" and p.get("type") == "ParserValidationError"]
    assert problems
    strict({**problems[0], "seq": 1}, NOTIFICATIONS["session:live:event"], "ParserValidationError")


async def test_observed_approvals_fit_their_types() -> None:
    """Attach mode's requests and results carry ``observed`` (and nulls) the recorded turns never show."""
    from bridge.capture.approvals import ApprovalBroker, Pending

    sent: list[Any] = []
    broker = ApprovalBroker(lambda m, p: sent.append(p) or 0, lambda: 1000)

    async def never(answer: Any) -> None:
        raise AssertionError(answer)

    pending = Pending(
        request_id="apr-1", codex_id=1, generation=1, kind="fileChange", thread_id="t", turn_id=None, item_id=None,
        command=None, options=[], timeout_ms=0, token="", permissions=None, respond=never, observed=True,
    )  # fmt: skip
    strict(pending.wire(), REGISTRY["list_pending_approvals"].result.__args__[0], "observed ApprovalRequest")
    broker._finish_observed(pending, "system", "codex resolved it")
    broker._finish(pending, "decline", "system", "timed out", answer=False)
    for body in sent:
        strict({**body, "seq": 1}, NOTIFICATIONS["session:live:event"], f"ApprovalResult {body}")
