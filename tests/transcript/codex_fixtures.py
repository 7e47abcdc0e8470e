"""Recording the project's transcript fixtures from real codex runs (``make fixtures``; fenced).

Each scenario runs a real ``capture-bridge serve --transcript`` that drives
the real codex (pinned version, native binary, :data:`CODEX_SAFE_ARGS`)
against the project's fake Responses API (:mod:`bridge.drill.fake_model`),
as the host would, and keeps what the bridge captured live. The files go to
``fixtures/transcripts/<scenario>.jsonl`` with the temp dir replaced by
``/RECORDING``, next to ``<scenario>.live.json`` (what the live bridge had
captured, normalised like a replay's output) and a README.

Run: ``python -m bridge.peers.fence -- python -m tests.transcript.codex_fixtures [--out DIR] [NAMES…]``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from bridge.client.host import Host, spawn_bridge
from bridge.drill.fake_model import FakeModel
from bridge.drill.peer_home import make_peer_home
from bridge.peers import fence
from bridge.peers.install import CODEX_VERSION, codex_native_binary

LIVE = "session:live:event"
STATUS = "codex-app-server-status"
# A throwaway key of the shape real keys have: it must never appear in a transcript.
API_KEY = "sk-test-capture-bridge-fixture-0123456789abcdef"
PLACEHOLDER = "/RECORDING"
# codex's own OTLP export off (the bridge would point it at its receiver): a transcript holds the
# two stdio connections, not OTLP, so a replay can reproduce only what came over the stream.
NO_OTEL = ["-c", "otel.exporter=none", "-c", "otel.trace_exporter=none", "-c", "otel.metrics_exporter=none"]


@dataclass
class Session:
    host: Host
    workdir: Path
    transcript: Path


class NotFenced(RuntimeError):
    pass


@asynccontextmanager
async def recording_bridge(root: Path, transcript: Path, *, auth_mode: str = "apikey") -> AsyncIterator[Session]:
    """A bridge recording ``transcript``, with a real codex pointed at a running fake model."""
    if not fence.isolated():
        raise NotFenced(
            "real codex runs only inside the loopback-only fence: "
            "`python -m bridge.peers.fence -- python -m tests.transcript.codex_fixtures`"
        )
    fake = FakeModel()
    async with anyio.create_task_group() as tg:
        await tg.start(fake.serve)
        peer = make_peer_home(root / "peer", fake.base_url)
        env = dict(peer.env)
        env.pop("CODEX_HOME", None)  # the bridge sets it from codex.home
        config: dict[str, Any] = {
            "appServerAuthMode": auth_mode,
            "autoIngestEnabled": True,  # the baseline on: the mode timeline then says something
            "codex": {"binaryPath": str(codex_native_binary()), "args": [*fence.CODEX_SAFE_ARGS, *NO_OTEL],
                      "home": str(peer.codex_home)},
        }  # fmt: skip
        async with spawn_bridge(root, config=config, env=env, args=("--transcript", str(transcript))) as host:
            yield Session(host, peer.workdir, transcript)
            await host.call("shutdown")
            await host.wait_exit(10)
        tg.cancel_scope.cancel()


async def handshake(host: Host, *, login: bool = True) -> None:
    await host.call("bridge_info")
    await host.call("start_codex_app_server")
    await host.call("codex_app_server_initialize")
    await host.call("codex_app_server_initialized")
    if login:
        await host.call("codex_app_server_account_login_start", {"authMode": "apiKey", "apiKey": API_KEY})
        await host.wait_for(STATUS, lambda p: p["authState"] == "authenticated" and p["streamHealthy"], timeout=30)


async def thread(host: Host, workdir: Path, policy: str = "never") -> str:
    started = await host.call(
        "codex_app_server_thread_start", {"cwd": str(workdir), "approvalPolicy": policy, "sandbox": "workspace-write"}
    )
    thread_id: str = started["thread"]["id"]
    return thread_id


async def turn(host: Host, thread_id: str, text: str, *, approve: str | None = None) -> str:
    since = len(host.notifications)
    started = await host.call("codex_app_server_turn_start", {"threadId": thread_id, "text": text})
    turn_id: str = started["turn"]["id"]
    if approve is not None:
        request = await host.wait_for(LIVE, lambda p: p.get("type") == "ApprovalRequest", timeout=60, since=since)
        await host.call(
            "codex_app_server_submit_approval",
            {"requestId": request["requestId"], "threadId": request["threadId"],
             "decisionToken": request["decisionToken"], "decision": approve},
        )  # fmt: skip
    await host.wait_for(
        LIVE, lambda p: p.get("eventType") == "turn/completed" and p.get("turnId") == turn_id, timeout=90, since=since
    )
    return turn_id


async def live_threads(host: Host) -> list[dict[str, Any]]:
    """What the live bridge holds (once the last pushes are committed)."""
    await anyio.sleep(0.5)
    listed = await host.call("list_captured_threads", {"limit": 1000})
    out = []
    for entry in sorted(listed, key=lambda t: (t.get("createdAtIso") or "", t["threadId"])):
        out.append(await host.call("get_captured_thread", {"threadId": entry["threadId"]}))
    return out


# ------------------------------------------------------------------ scenarios

Scenario = Callable[[Session], Awaitable[list[dict[str, Any]]]]


async def chat(s: Session) -> list[dict[str, Any]]:
    """A plain chat turn: reasoning, an assistant message, token usage."""
    await handshake(s.host)
    tid = await thread(s.host, s.workdir)
    await turn(s.host, tid, "[[scenario:chat]] Say hello to the transcript.")
    return await live_threads(s.host)


async def approval(s: Session) -> list[dict[str, Any]]:
    """A shell command under approvalPolicy untrusted, approved by the host."""
    await handshake(s.host)
    tid = await thread(s.host, s.workdir, policy="untrusted")
    await turn(s.host, tid, "[[scenario:shell:echo fixture-approved]] Run the command.", approve="accept")
    return await live_threads(s.host)


async def error_turn(s: Session) -> list[dict[str, Any]]:
    """The model fails every attempt (HTTP 500): codex retries, then fails the turn."""
    await handshake(s.host)
    tid = await thread(s.host, s.workdir)
    await turn(s.host, tid, "[[scenario:error]] This turn fails.")
    return await live_threads(s.host)


async def auth(s: Session) -> list[dict[str, Any]]:
    """ChatGPT login started and cancelled, an API-key login, an account read, a logout."""
    host = s.host
    await handshake(host, login=False)
    started = await host.call("codex_app_server_account_login_start", {"authMode": "chatgpt"})
    await host.call("codex_app_server_account_login_cancel", {"loginId": started["loginId"]})
    await host.call("codex_app_server_account_login_start", {"authMode": "apiKey", "apiKey": API_KEY})
    await host.wait_for(STATUS, lambda p: p["authState"] == "authenticated", timeout=30)
    await host.call("codex_app_server_account_read")
    await host.call("codex_app_server_account_logout")
    await host.wait_for(STATUS, lambda p: p["authState"] in ("logged_out", "needs_login"), timeout=30)
    return await live_threads(host)


async def restart(s: Session) -> list[dict[str, Any]]:
    """A chat turn, codex killed (-9), the bridge restarts and re-handshakes it, another turn."""
    host = s.host
    await handshake(host)
    tid = await thread(host, s.workdir)
    await turn(host, tid, "[[scenario:chat]] Before the crash.")
    status = await host.call("get_codex_app_server_status")
    since = len(host.notifications)
    os.kill(status["pid"], signal.SIGKILL)
    await host.wait_for(STATUS, lambda p: p["restartAttemptsInWindow"] >= 1, timeout=30, since=since)
    await host.wait_for(
        STATUS, lambda p: p["state"] == "running" and p["initialized"] and p["streamHealthy"], timeout=60, since=since
    )
    tid2 = await thread(host, s.workdir)
    await turn(host, tid2, "[[scenario:chat]] After the restart.")
    return await live_threads(host)


SCENARIOS: dict[str, Scenario] = {
    "chat": chat,
    "approval": approval,
    "error-turn": error_turn,
    "auth": auth,
    "restart": restart,
}


async def record(name: str, out_dir: Path) -> Path:
    """Record one scenario into ``out_dir`` (transcript + live capture), paths made portable."""
    scenario = SCENARIOS[name]
    with tempfile.TemporaryDirectory(prefix=f"cb-fixture-{name}-") as tmp:
        root = Path(tmp)
        transcript = root / f"{name}.jsonl"
        async with recording_bridge(root, transcript) as session:
            live = await scenario(session)
        from bridge.transcript.compare import normalise

        text = transcript.read_text().replace(str(root), PLACEHOLDER)
        live_text = json.dumps(normalise(live), indent=2, sort_keys=True).replace(str(root), PLACEHOLDER)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{name}.jsonl"
    target.write_text(text)
    (out_dir / f"{name}.live.json").write_text(live_text + "\n")
    return target


README = """\
# Transcript fixtures

Transcripts (docs/protocol.md §8) of real runs of `capture-bridge serve --transcript`
driving the real codex {codex} (native binary, fenced: loopback-only network
namespace, `-c features.plugins=false` and friends) against the project's
fake Responses API (`bridge/drill/fake_model.py`), made by
`tests/transcript/codex_fixtures.py` (`make fixtures`):

    python -m bridge.peers.fence -- .venv/bin/python -m tests.transcript.codex_fixtures --out fixtures/transcripts

| file | scenario |
|---|---|
{rows}

The bridge ran with `autoIngestEnabled: true` (receiver on an ephemeral
loopback port) and codex's own OTLP export off (`-c otel.exporter=none`, …):
a transcript holds the two stdio connections, not OTLP, so what a replay can
reproduce is the stream half. The temp dir of the run is replaced by
`/RECORDING` everywhere in the files.
`<name>.live.json` is what the live bridge had captured (`get_captured_thread`
for each thread, normalised like `capture-bridge replay --json` output):
`tests/transcript/` replays every transcript without codex and checks the
result against it and against the scenario's own expectations.
The API key used for the logins is a throwaway `sk-…` string; it must appear
nowhere in these files (the tests check).
"""


def write_readme(out_dir: Path) -> None:
    rows = "\n".join(f"| `{name}.jsonl` | {(fn.__doc__ or '').strip()} |" for name, fn in SCENARIOS.items())
    (out_dir / "README.md").write_text(README.format(codex=f"`{CODEX_VERSION}`", rows=rows))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.transcript.codex_fixtures", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--out", default="fixtures/transcripts", help="where to write the fixtures")
    parser.add_argument("names", nargs="*", help=f"scenarios (default: all of {', '.join(SCENARIOS)})")
    args = parser.parse_args(argv)
    names = args.names or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        print(f"unknown scenario(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    out_dir = Path(args.out)
    try:
        for name in names:
            path = anyio.run(record, name, out_dir)
            print(f"recorded {path}")
    except NotFenced as exc:
        print(f"fixtures: {exc}", file=sys.stderr)
        return 1
    write_readme(out_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
