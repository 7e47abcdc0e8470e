"""Reading captured content back: typed results the host commands encode as they are.

Each Struct is the wire shape of a command result (camelCase, ``null`` for a
missing value), so the JSON Schema of ``list_captured_threads``,
``get_captured_thread`` and ``get_codex_stream_dedupe_log`` is generated from
the same types that produce the answers. The functions take a connection: the
store runs them on its reader.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Literal

import msgspec

from bridge.clock import iso_ms, iso_or_none

_decode = msgspec.json.decode

# Deltas whose text makes up an item's text or output while it streams.
TEXT_DELTAS = {
    "item/agentMessage/delta": "text",
    "item/plan/delta": "text",
    "item/reasoning/summaryTextDelta": "text",
    "item/reasoning/textDelta": "text",
    "item/commandExecution/outputDelta": "output",
    "item/fileChange/outputDelta": "output",
}


Provider = Literal["codex", "claude_code"]


class _ThreadHead(msgspec.Struct, rename="camel", kw_only=True):
    """What every view of a captured thread starts with."""

    thread_id: str
    provider: Provider
    title: str | None
    cwd: str | None
    created_at_iso: str | None
    updated_at_iso: str | None
    sources: list[str]


class ThreadSummary(_ThreadHead, kw_only=True):
    """One entry of ``list_captured_threads``."""

    turn_count: int


class CapturedItem(msgspec.Struct, rename="camel", kw_only=True):
    """An item of a captured turn: a message, a command, a file change, reasoning…"""

    item_id: str
    type: str  # codex's item type: userMessage, agentMessage, reasoning, commandExecution, fileChange, …
    status: str | None
    text: str | None
    output: str | None
    exit_code: int | None
    command: str | None
    started_at_iso: str | None
    completed_at_iso: str | None
    source: str
    seen_by: list[str]  # every source that delivered it (the stream, the OTEL baseline)
    extra: dict[str, Any] | None  # what only the losing source knew (docs/crosssource.md)


class CapturedTurn(msgspec.Struct, rename="camel", kw_only=True):
    """A turn and its items in order; ``turnId: null`` gathers items whose turn was never seen."""

    turn_id: str | None  # null: the pseudo-turn of items seen without a turn
    status: Literal["inProgress", "completed", "interrupted", "failed", "incomplete"] | None
    error: str | None
    started_at_iso: str | None
    completed_at_iso: str | None
    usage: dict[str, Any] | None  # the stream's token usage, plus the baseline's sums under "otel"
    items: list[CapturedItem]


class CapturedThread(_ThreadHead, kw_only=True):
    """``get_captured_thread``: a thread with every turn and item the bridge captured."""

    turns: list[CapturedTurn]


class DedupDecision(msgspec.Struct, rename="camel", kw_only=True):
    """One entry of ``get_codex_stream_dedupe_log`` (docs/protocol.md §3.5)."""

    at_iso: str
    key: str
    decision: Literal["accepted", "duplicate", "replaced", "dropped"]
    incoming_source: str
    chosen_source: str | None
    replaced_source: str | None


def list_threads(conn: sqlite3.Connection, limit: int, since_ms: int | None) -> list[ThreadSummary]:
    sql = "SELECT thread_id, provider, title, cwd, created_at_ms, updated_at_ms, sources FROM threads"
    args: list[Any] = []
    if since_ms is not None:
        sql += " WHERE updated_at_ms >= ?"
        args.append(since_ms)
    sql += " ORDER BY updated_at_ms DESC, thread_id LIMIT ?"
    args.append(limit)
    out = []
    for tid, provider, title, cwd, created, updated, sources in conn.execute(sql, args):
        turns = conn.execute("SELECT count(*) FROM turns WHERE thread_id = ?", (tid,)).fetchone()[0]
        out.append(
            ThreadSummary(
                thread_id=tid, provider=provider, title=title, cwd=cwd, created_at_iso=iso_or_none(created),
                updated_at_iso=iso_or_none(updated), sources=_decode(sources), turn_count=turns,
            )
        )  # fmt: skip
    return out


def get_thread(conn: sqlite3.Connection, thread_id: str) -> CapturedThread | None:
    row = conn.execute(
        "SELECT provider, title, cwd, created_at_ms, updated_at_ms, sources FROM threads WHERE thread_id = ?",
        (thread_id,),
    ).fetchone()
    if row is None:
        return None
    provider, title, cwd, created, updated, sources = row
    turns: list[CapturedTurn] = []
    by_turn: dict[str | None, list[CapturedItem]] = {}
    for t in conn.execute(
        "SELECT turn_id, status, error, started_at_ms, completed_at_ms, usage FROM turns "
        "WHERE thread_id = ? ORDER BY coalesce(started_at_ms, completed_at_ms, captured_at_ms), ord",
        (thread_id,),
    ):
        items: list[CapturedItem] = []
        by_turn[t[0]] = items
        turns.append(
            CapturedTurn(
                turn_id=t[0], status=t[1], error=t[2], started_at_iso=iso_or_none(t[3]),
                completed_at_iso=iso_or_none(t[4]), usage=_decode(t[5]) if t[5] else None, items=items,
            )
        )  # fmt: skip
    partial = partial_texts(conn, thread_id)
    loose: list[CapturedItem] = []
    for r in conn.execute(
        "SELECT item_id, turn_id, type, status, text, output, exit_code, command, started_at_ms, "
        "completed_at_ms, source, seen_by, extra FROM items WHERE thread_id = ? "
        "ORDER BY coalesce(started_at_ms, completed_at_ms, captured_at_ms), ord",
        (thread_id,),
    ):
        text, output = r[4], r[5]
        if r[3] != "completed" and text is None and output is None:
            assembled = partial.get(r[0], {})
            text, output = assembled.get("text"), assembled.get("output")
        item = CapturedItem(
            item_id=r[0], type=r[2], status=r[3], text=text, output=output, exit_code=r[6], command=r[7],
            started_at_iso=iso_or_none(r[8]), completed_at_iso=iso_or_none(r[9]), source=r[10],
            seen_by=_decode(r[11]), extra=_decode(r[12]) if r[12] else None,
        )  # fmt: skip
        by_turn.get(r[1], loose).append(item)
    if loose:
        turns.append(
            CapturedTurn(
                turn_id=None, status="incomplete", error=None, started_at_iso=None, completed_at_iso=None,
                usage=None, items=loose,
            )
        )  # fmt: skip
    return CapturedThread(
        thread_id=thread_id, provider=provider, title=title, cwd=cwd, created_at_iso=iso_or_none(created),
        updated_at_iso=iso_or_none(updated), sources=_decode(sources), turns=turns,
    )  # fmt: skip


def partial_texts(conn: sqlite3.Connection, thread_id: str) -> dict[str, dict[str, str]]:
    """Text of items still in progress, assembled from their deltas in order."""
    out: dict[str, dict[str, str]] = {}
    for item_id, method, text in conn.execute(
        "SELECT d.item_id, d.method, d.text FROM deltas d JOIN items i USING (thread_id, item_id) "
        "WHERE d.thread_id = ? AND i.status != 'completed' ORDER BY d.item_id, d.first_ordinal",
        (thread_id,),
    ):
        field = TEXT_DELTAS.get(method)
        if field:
            slot = out.setdefault(item_id, {})
            slot[field] = slot.get(field, "") + text
    return out


def decision_log(conn: sqlite3.Connection, limit: int) -> list[DedupDecision]:
    rows = conn.execute(
        "SELECT at_ms, key, decision, incoming_source, chosen_source, replaced_source FROM decisions "
        "ORDER BY id DESC LIMIT ?",
        (limit,),
    ).fetchall()
    return [
        DedupDecision(
            at_iso=iso_ms(r[0]), key=r[1], decision=r[2], incoming_source=r[3], chosen_source=r[4],
            replaced_source=r[5],
        )
        for r in rows
    ]  # fmt: skip
