"""Helpers for the cross-source tests: a bridge with the real codex and the baseline on, reading
the store it writes, and turning recorded fixtures back into records and stream events."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio

from bridge.capture.events import CaptureEvent
from bridge.capture.normalize import normalize
from bridge.receiver.mapping import record_from_row
from bridge.receiver.records import OtelRecord
from tests.support.host import Host

DATA = Path(__file__).resolve().parents[2] / "fixtures" / "crosssource"
_INDEX = {"item/reasoning/summaryTextDelta": "summaryIndex", "item/reasoning/textDelta": "contentIndex"}
STREAM = "app_server_stream"
OTEL = "otel"


def store_rows(
    host: Host, sql: str, params: tuple[Any, ...] = (), *, store: str = "capture.sqlite3"
) -> list[dict[str, Any]]:
    """Read the running bridge's database, or ``store="telemetry.sqlite3"`` (WAL: a reader never disturbs a writer)."""
    if not (host.data_dir / store).exists():
        return []
    conn = sqlite3.connect(f"file:{host.data_dir / store}?mode=ro", uri=True, timeout=5)
    try:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(sql, params)]
    finally:
        conn.close()


async def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    with anyio.move_on_after(timeout):
        while not predicate():
            await anyio.sleep(0.1)
        return
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def items_of(thread: dict[str, Any]) -> list[dict[str, Any]]:
    return [i for t in thread["turns"] for i in t["items"]]


# -- fixtures ---------------------------------------------------------------------------------------


def load_fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / name).read_text())
    return data


def fixture_records(fixture: dict[str, Any]) -> list[OtelRecord]:
    return [record_from_row(row) for row in fixture["records"]]


def fixture_stream(fixture: dict[str, Any]) -> list[CaptureEvent]:
    """The recorded stream notifications, normalised as the pipeline does."""
    events = []
    for note in fixture.get("stream", []):
        params = dict(note["params"])
        # the host's delta payloads are slim: put back the indexes reasoning deltas need
        params.setdefault(_INDEX.get(note["method"], "_"), 0)
        event = normalize(note["method"], json.dumps(params).encode(), note.get("emittedAtMs"))
        if event is not None:
            events.append(event)
    return events
