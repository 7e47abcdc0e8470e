"""Frames of the reference recordings of real codex 0.169.0 runs (fixtures/codex-0.169.0/, see its README)."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec

REFERENCE = Path(__file__).resolve().parents[2] / "fixtures" / "codex-0.169.0"


class Note(msgspec.Struct):
    method: str | None
    params: msgspec.Raw
    emittedAtMs: int | None
    line: bytes


def notifications(scenario: str) -> list[Note]:
    """The server→client notifications of a recorded scenario, in order."""
    out: list[Note] = []
    for text in (REFERENCE / scenario / "appserver.jsonl").read_text().splitlines():
        rec = json.loads(text)
        msg = rec.get("msg")
        if rec.get("dir") != "server->client" or not isinstance(msg, dict) or "method" not in msg or "id" in msg:
            continue
        line = json.dumps(msg).encode()
        out.append(
            Note(msg["method"], msgspec.Raw(json.dumps(msg.get("params", {})).encode()), msg.get("emittedAtMs"), line)
        )
    return out
