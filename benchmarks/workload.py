"""A realistic codex stream, as many frames as asked: the shapes of codex 0.169.0.

Each turn is what a real turn looks like on the wire (thread status, turn
start, a user message, a reasoning item with summary deltas, a command with
output deltas, an agent message streamed in many small deltas, token usage,
turn completed), with fresh ids, so every frame is new to the ledger. Agent
text arrives in many deltas because that is what dominates a real stream.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator


def _frame(method: str, params: dict[str, object], at: int) -> bytes:
    return json.dumps({"method": method, "params": params, "emittedAtMs": at}, separators=(",", ":")).encode()


def turn_frames(thread: str, turn_no: int, deltas: int = 120, at: int | None = None) -> list[bytes]:
    at = at if at is not None else int(time.time() * 1000)
    turn = f"{thread}-turn-{turn_no}"
    user, rs, cmd, msg = (f"{turn}-{k}" for k in ("user", "rs", "exec", "msg"))
    base = {"threadId": thread, "turnId": turn}
    out = [
        _frame("thread/status/changed", {"threadId": thread, "status": {"type": "active", "activeFlags": []}}, at),
        _frame(
            "turn/started",
            {
                "threadId": thread,
                "turn": {"id": turn, "items": [], "status": "inProgress", "error": None, "startedAt": at // 1000},
            },
            at,
        ),
        _frame(
            "item/started",
            {
                **base,
                "item": {
                    "type": "userMessage",
                    "id": user,
                    "content": [{"type": "text", "text": f"turn {turn_no}: please run the tests", "text_elements": []}],
                },
            },
            at,
        ),
        _frame(
            "item/completed",
            {
                **base,
                "item": {
                    "type": "userMessage",
                    "id": user,
                    "content": [{"type": "text", "text": f"turn {turn_no}: please run the tests", "text_elements": []}],
                },
            },
            at,
        ),
        _frame("item/started", {**base, "item": {"type": "reasoning", "id": rs, "summary": [], "content": []}}, at),
    ]
    for i in range(8):
        out.append(
            _frame(
                "item/reasoning/summaryTextDelta",
                {**base, "itemId": rs, "delta": f"thinking step {i} ", "summaryIndex": 0},
                at + i,
            )
        )
    out.append(
        _frame(
            "item/completed",
            {
                **base,
                "item": {
                    "type": "reasoning",
                    "id": rs,
                    "summary": ["".join(f"thinking step {i} " for i in range(8))],
                    "content": [],
                },
            },
            at + 8,
        )
    )
    out.append(
        _frame(
            "item/started",
            {
                **base,
                "item": {
                    "type": "commandExecution",
                    "id": cmd,
                    "command": "make test",
                    "cwd": "/work",
                    "status": "inProgress",
                    "aggregatedOutput": None,
                    "exitCode": None,
                    "commandActions": [],
                    "durationMs": None,
                },
            },
            at + 9,
        )
    )
    for i in range(10):
        out.append(
            _frame("item/commandExecution/outputDelta", {**base, "itemId": cmd, "delta": f"test {i} ok\n"}, at + 10 + i)
        )
    out.append(
        _frame(
            "item/completed",
            {
                **base,
                "item": {
                    "type": "commandExecution",
                    "id": cmd,
                    "command": "make test",
                    "cwd": "/work",
                    "status": "completed",
                    "aggregatedOutput": "".join(f"test {i} ok\n" for i in range(10)),
                    "exitCode": 0,
                    "commandActions": [],
                    "durationMs": 1200,
                },
            },
            at + 20,
        )
    )
    out.append(
        _frame(
            "item/started", {**base, "item": {"type": "agentMessage", "id": msg, "text": "", "phase": None}}, at + 21
        )
    )
    words = []
    for i in range(deltas):
        word = f"w{i} "
        words.append(word)
        out.append(_frame("item/agentMessage/delta", {**base, "itemId": msg, "delta": word}, at + 22 + i // 4))
    out.append(
        _frame(
            "item/completed",
            {**base, "item": {"type": "agentMessage", "id": msg, "text": "".join(words), "phase": None}},
            at + 30 + deltas,
        )
    )
    usage = {
        "totalTokens": 300,
        "inputTokens": 200,
        "cachedInputTokens": 0,
        "outputTokens": 100,
        "reasoningOutputTokens": 10,
    }
    out.append(
        _frame(
            "thread/tokenUsage/updated",
            {**base, "tokenUsage": {"total": usage, "last": usage, "modelContextWindow": 258400}},
            at + 31 + deltas,
        )
    )
    out.append(
        _frame(
            "thread/status/changed",
            {"threadId": thread, "status": {"type": "idle", "activeFlags": []}},
            at + 32 + deltas,
        )
    )
    out.append(
        _frame(
            "turn/completed",
            {
                "threadId": thread,
                "turn": {
                    "id": turn,
                    "items": [],
                    "status": "completed",
                    "error": None,
                    "completedAt": (at + 33 + deltas) // 1000,
                },
            },
            at + 33 + deltas,
        )
    )
    return out  # fmt: skip


def frames(total: int, deltas: int = 120, threads: int = 4) -> Iterator[bytes]:
    """Exactly ``total`` frames: whole turns one after another over a few threads (the last may be cut)."""
    produced = 0
    turn_no = 0
    at = int(time.time() * 1000)
    while True:
        thread = f"bench-thread-{turn_no % threads}"
        for line in turn_frames(thread, turn_no, deltas, at + turn_no * 1000):
            if produced >= total:
                return
            yield line
            produced += 1
        turn_no += 1
