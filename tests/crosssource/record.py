"""Record the cross-source fixtures in ``fixtures/crosssource/`` from the real peers.

Run inside the fence: ``.venv/bin/python -m bridge.peers.fence -- .venv/bin/python -m tests.crosssource.record``.
It drives a spawned bridge (``autoIngestEnabled: true``) with the real codex against the fake model
(a chat turn and a shell turn), and ``claude -p`` against the fake Messages API, then keeps what the
mapping reads: the stream's notifications (as the host received them) and the OTEL records that
are relevant or that name a turn, with paths, user ids and times of day made neutral.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import anyio

from bridge.drill.fake_model import fake_model_in_thread
from bridge.peers import fence
from bridge.receiver import mapping
from tests.crosssource.support import DATA, store_rows, wait_until
from tests.receiver.support import run_peer, running_receiver
from tests.stream.support import LIVE, run_turn, streaming_bridge
from tests.support.claude import claude_binary, claude_env
from tests.support.fake_anthropic import FakeAnthropic

TELEMETRY = "telemetry.sqlite3"  # the receiver's store
AGENT_RESPONSES = "SELECT 1 FROM otel_records WHERE name = 'codex.agent_response'"
KEEP_COLUMNS = (
    "dedup_key", "signal", "provider", "name", "conversation_id", "turn_id", "item_id", "call_id", "sequence",
    "trace_id", "span_id", "time_ns", "body", "attributes", "detail",
)  # fmt: skip


def _neutral(text: str, tmp: str) -> str:
    text = text.replace(tmp, "/WORKSPACE")
    return re.sub(r"/tmp/pytest-of-[^/\"\\ ]+/pytest-\d+/[^/\"\\ ]+", "/WORKSPACE", text)


def _keep(rows: list[dict[str, Any]], tmp: str) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        record = mapping.record_from_row(row)
        if not (mapping.relevant(record) or (record.signal == "span" and record.turn_id)):
            continue
        kept = {k: row[k] for k in KEEP_COLUMNS}
        attrs = json.loads(kept["attributes"])
        if "user.id" in attrs:
            attrs["user.id"] = "USER"
        kept["attributes"] = _neutral(json.dumps(attrs), tmp)
        out.append(kept)
    return out


async def record_codex(tmp: Path) -> dict[str, Any]:
    with fake_model_in_thread() as fake:
        async with streaming_bridge(tmp, fake.base_url, autoIngestEnabled=True) as (host, thread_id):
            await run_turn(host, thread_id, "[[scenario:chat]] tell me something")
            since = len(host.notifications)
            async with anyio.create_task_group() as tg:
                tg.start_soon(run_turn, host, thread_id, "[[scenario:shell:echo hello-fixture]] run it")
                request = await host.wait_for(LIVE, lambda p: p.get("type") == "ApprovalRequest", since=since)
                await host.call(
                    "codex_app_server_submit_approval",
                    {"requestId": request["requestId"], "threadId": thread_id,
                     "decisionToken": request["decisionToken"], "decision": "accept"},
                )  # fmt: skip
            await wait_until(
                lambda: len(store_rows(host, AGENT_RESPONSES, store=TELEMETRY)) >= 2,
                30,
                "both agent responses",
            )
            await host.call("stop_codex_app_server")  # codex flushes its last spans on the way out
            await anyio.sleep(3)
            rows = store_rows(host, "SELECT * FROM otel_records_full ORDER BY time_ns, id", store=TELEMETRY)
            stream = [
                {"method": p["eventType"], "params": p["payload"], "emittedAtMs": p["emittedAtMs"]}
                for m, p in host.notifications
                if m == LIVE and p.get("type") == "SessionDelta" and p.get("source") == "app_server_stream"
            ]
    return {"threadId": thread_id, "stream": json.loads(_neutral(json.dumps(stream), str(tmp))),
            "records": _keep(rows, str(tmp))}  # fmt: skip


async def record_claude(tmp: Path) -> dict[str, Any]:
    tmp.mkdir(parents=True, exist_ok=True)
    fake = FakeAnthropic()
    async with running_receiver(tmp) as rx, anyio.create_task_group() as tg:
        await tg.start(fake.serve)
        env = claude_env(
            fence.peer_env(dict(os.environ), tmp / "home"),
            anthropic_base_url=fake.base_url,
            otlp_endpoint=rx.endpoint,
            otlp_headers=f"x-capture-bridge-key={rx.key}",
            protocol="http/json",
        )
        work = tmp / "work"
        work.mkdir()
        finished = await run_peer([str(claude_binary()), "-p", "Say hi to the crosssource test."], env, work)
        assert finished.returncode == 0, finished.stderr[-3000:]
        await anyio.sleep(2)
        rows = rx.rows()
        tg.cancel_scope.cancel()
    return {"records": _keep(rows, str(tmp))}


async def main() -> int:
    if not fence.isolated():
        print("run inside the fence: python -m bridge.peers.fence -- python -m tests.crosssource.record")
        return 2
    DATA.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        codex = await record_codex(Path(tmp) / "codex")
        (DATA / "codex_chat_shell.json").write_text(json.dumps(codex, indent=1) + "\n")
        claude = await record_claude(Path(tmp) / "claude")
        (DATA / "claude_print.json").write_text(json.dumps(claude, indent=1) + "\n")
    print("recorded", len(codex["records"]), "codex records,", len(codex["stream"]), "stream notifications,",
          len(claude["records"]), "claude records")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(anyio.run(main))
