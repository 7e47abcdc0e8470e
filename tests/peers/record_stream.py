"""Records what the real codex app-server writes through chat, shell (accept and decline) and error turns.

Usage (inside the fence): ``.venv/bin/python -m bridge.peers.fence -- .venv/bin/python
tests/peers/record_stream.py fixtures/codex-0.169.0/stream.jsonl``. Every line of the
output is one server->client frame exactly as codex wrote it, with the temporary root replaced by
``/WORKSPACE``. The codec tests and benchmarks/decode_bench.py read it.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))
import conftest

from bridge.drill.fake_model import fake_model_in_thread

TURNS = [
    ("never", None, "Say hi [[scenario:chat]]"),
    ("untrusted", "accept", "Run it [[scenario:shell:echo capture-bridge-ok; echo ok > accepted.txt]]"),
    ("untrusted", "decline", "Run it [[scenario:shell:echo nope > declined.txt]]"),
    ("never", None, "Fail please [[scenario:error]]"),
]


async def record(out: Path) -> None:
    with fake_model_in_thread() as fake, tempfile.TemporaryDirectory(prefix="cb-record-") as tmp:
        env = conftest.make_codex_env(Path(tmp), fake.base_url)
        async with conftest.codex_app_server(env) as cx:
            decision: dict[str, str | None] = {"value": None}
            cx.on_server_request = lambda m: {"decision": decision["value"]} if decision["value"] else None
            await cx.start_session()
            for policy, answer, text in TURNS:
                decision["value"] = answer
                thread_id = await cx.start_thread(env.workdir, approval_policy=policy)
                await cx.run_turn(thread_id, text)
            await anyio.sleep(0.2)
        lines = [line.decode().replace(tmp, "/WORKSPACE") for line in cx.raw_lines]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {len(lines)} frames to {out}")


if __name__ == "__main__":
    anyio.run(record, Path(sys.argv[1]))
