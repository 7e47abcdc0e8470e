"""A replay's report as JSON (stable bytes, for fixtures and diffs) and as text for a person."""

from __future__ import annotations

import json
from typing import Any


def render_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _clip(text: Any, width: int = 72) -> str:
    value = "" if text is None else str(text).replace("\n", "\\n")
    return value if len(value) <= width else value[: width - 1] + "…"


def render_text(report: dict[str, Any]) -> str:
    """A person's view of the report (deterministic, like the JSON)."""
    out: list[str] = []
    tr, rp = report["transcript"], report["replay"]
    out.append(
        f"transcript {tr['file']}: {tr['hostFrames']} host frames, {tr['sidecarFrames']} codex frames, "
        f"{tr['codexConnections']} codex connection(s)"
    )
    state = "complete" if rp["complete"] else "INCOMPLETE"
    out.append(f"replay ({rp['mode']} side): {state}, {rp['played']} of {tr['sidecarFrames']} codex frames played")
    for problem in rp["problems"]:
        out.append(f"  problem: {problem}")
    for err in rp.get("hostErrors", []):
        out.append(f"  {err['method']} -> error {err['code']}: {err['message']}")
    out.append(f"captured threads: {len(report['threads'])}")
    for thread in report["threads"]:
        out.append(
            f"  thread {thread['threadId']} ({thread['provider']}, sources {', '.join(thread['sources'])})"
            f" title={_clip(thread.get('title'), 40)!s}"
        )
        for turn in thread["turns"]:
            err = f" error={_clip(turn['error'], 60)}" if turn.get("error") else ""
            out.append(f"    turn {turn['turnId']} {turn['status']}{err}: {len(turn['items'])} item(s)")
            for item in turn["items"]:
                detail = item.get("text") or item.get("command") or item.get("output") or ""
                exit_code = f" exit={item['exitCode']}" if item.get("exitCode") is not None else ""
                out.append(f"      {item['type']} {item['status']}{exit_code}: {_clip(detail, 60)}")
    counts: dict[str, int] = {}
    for d in report["dedup"]:
        counts[d["decision"]] = counts.get(d["decision"], 0) + 1
    summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"
    out.append(f"dedup decisions: {len(report['dedup'])} ({summary})")
    for d in report["dedup"]:
        if d["decision"] != "accepted":
            out.append(f"  {d['decision']}: {d['key']} ({d['incomingSource']} -> {d['chosenSource']})")
    out.append("mode timeline:")
    for m in report["modes"]:
        out.append(f"  {m['fromMode'] or '(start)'} -> {m['toMode']}: {m['reason']}")
    if "host" in report:
        h = report["host"]
        out.append(f"host side: {h['compared']} of {h['requests']} requests compared")
        diff = h["firstDifference"]
        if diff is None:
            out.append("  every answer equals the recorded one")
        else:
            out.append(f"  first difference: request #{diff['request']} {diff['method']} at {diff['at']}")
            out.append(f"    recorded: {json.dumps(diff['recorded'], sort_keys=True)[:400]}")
            out.append(f"    replayed: {json.dumps(diff['replayed'], sort_keys=True)[:400]}")
    return "\n".join(out) + "\n"
