"""``capture-bridge drill``: the runbook, performed for real against a spawned bridge.

It plays the host: spawns ``capture-bridge serve`` on its own fresh data dir,
codex home and ``$HOME`` (so nothing of the user's is touched), starts the
real codex against the local fake model, streams a real turn, performs the
Emergency OTEL-Only Fallback and the Recovery Back to Hybrid with a second
turn, previews the collector migration, and ends with the Go / No-Go gate.
Every step is a row of the timeline: what was done, which command, the
capture mode after it, and the verdict.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import anyio

from bridge.client.host import Host, HostError, spawn_bridge
from bridge.drill.timeline import Timeline
from bridge.peers import fence
from bridge.runtime import bridge_argv

FAKE_API_KEY = "sk-drill-fake-key-0000000000000000"
LIVE = "session:live:event"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="data dir to use (default: a fresh temporary one)")
    parser.add_argument(
        "--codex-bin", help="codex binary to supervise (default: the pinned codex, installed if missing)"
    )
    parser.add_argument("--stable-seconds", type=float, default=3.0, help="gate: how long the mode must be stable")
    parser.add_argument("--no-fence", action="store_true", help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    # codex.binaryPath takes absolute paths only: a relative --codex-bin is taken from here.
    codex_bin = str(Path(args.codex_bin).expanduser().absolute()) if args.codex_bin else None
    if codex_bin is None:
        from bridge.peers.install import codex_native_binary

        codex_bin = str(codex_native_binary(install=True))  # before the fence: npm needs the registry
    if not fence.isolated() and fence.can_unshare() and not args.no_fence:
        argv = bridge_argv("drill", "--codex-bin", codex_bin, "--stable-seconds", str(args.stable_seconds))
        if args.data_dir:
            argv += ["--data-dir", args.data_dir]
        sys.stdout.flush()
        wrapped = fence.fenced_argv(argv)
        os.execvp(wrapped[0], wrapped)
    with tempfile.TemporaryDirectory(prefix="capture-bridge-drill-") as tmp:
        root = Path(tmp)
        data_dir = Path(args.data_dir) if args.data_dir else root / "data"
        return anyio.run(drill, root, data_dir, codex_bin, args.stable_seconds)


async def mode_of(host: Host) -> str:
    status = await host.call("get_capture_reliability_status")
    return str(status["mode"])


class Drill:
    def __init__(self, host: Host, timeline: Timeline) -> None:
        self.host = host
        self.t = timeline

    async def step(self, step: str, command: str, params: dict[str, Any] | None = None, *, expect: Any = None) -> Any:
        """Run one command; ``expect(result) -> str | None`` returns a problem or None."""
        try:
            result = await self.host.call(command, params, timeout=120)
        except HostError as exc:
            self.t.add(step, command, await self.mode(), "fail", f"{exc.code} {exc.message}")
            return None
        problem = expect(result) if expect is not None else None
        self.t.add(step, command, await self.mode(), "fail" if problem else "ok", problem or "")
        return result

    async def mode(self) -> str | None:
        try:
            return await mode_of(self.host)
        except (HostError, TimeoutError):
            return None

    async def expect_mode(self, step: str, allowed: tuple[str, ...], timeout: float = 10) -> str | None:
        """Wait (bounded) for the mode to be one of ``allowed``; FAILURE is always a failure."""
        mode = None
        with anyio.move_on_after(timeout):
            while True:
                mode = await self.mode()
                if mode in allowed:
                    break
                await anyio.sleep(0.2)
        ok = mode in allowed
        self.t.add(step, "get_capture_reliability_status", mode, "ok" if ok else "fail",
                   "" if ok else f"expected {' or '.join(allowed)}")  # fmt: skip
        return mode

    async def turn(self, step: str, thread_id: str, text: str) -> bool:
        since = len(self.host.notifications)
        started = await self.step(step, "codex_app_server_turn_start", {"threadId": thread_id, "text": text})
        if started is None:
            return False
        turn_id = started["turn"]["id"]
        try:
            await self.host.wait_for(
                LIVE, lambda p: p.get("eventType") == "turn/completed" and p.get("turnId") == turn_id,
                timeout=90, since=since,
            )  # fmt: skip
        except TimeoutError:
            self.t.add("  turn completes", "session:live:event", await self.mode(), "fail", "no turn/completed")
            return False
        thread = await self.host.call("get_captured_thread", {"threadId": thread_id})
        turn = next((t for t in thread["turns"] if t["turnId"] == turn_id), None)
        items = turn["items"] if turn else []
        answer = next((i["text"] for i in items if i["type"] == "agentMessage"), None)
        ok = turn is not None and turn["status"] == "completed" and bool(answer)
        self.t.add("  captured", "get_captured_thread", await self.mode(), "ok" if ok else "fail",
                   f"{len(items)} items; agent said: {(answer or '')[:40]!r}")  # fmt: skip
        return ok

    async def handshake_and_login(self, label: str) -> None:
        await self.step(f"{label}: start sidecar", "start_codex_app_server",
                        expect=lambda r: None if r["state"] == "running" else f"state {r['state']}")  # fmt: skip
        await self.step(f"{label}: initialize", "codex_app_server_initialize")
        await self.step(f"{label}: initialized", "codex_app_server_initialized")
        login = await self.step(f"{label}: login start (apikey)", "codex_app_server_account_login_start",
                                {"authMode": "apiKey", "apiKey": FAKE_API_KEY})  # fmt: skip
        if login is not None:
            await self.step(f"{label}: login completed", "codex_app_server_account_login_completed",
                            {"success": True})  # fmt: skip
            await self.step(
                f"{label}: account updated", "codex_app_server_account_updated",
                {"authMode": "apikey", "authenticated": True},
                expect=lambda r: None if r["authState"] == "authenticated" else f"authState {r['authState']}",
            )  # fmt: skip


async def drill(root: Path, data_dir: Path, codex_bin: str, stable_seconds: float) -> int:
    from bridge.drill.fake_model import fake_model_in_thread
    from bridge.drill.peer_home import make_peer_home

    t = Timeline()
    t.header("capture-bridge drill: the release runbook, for real")
    if fence.isolated():
        t.note("fence: inside a loopback-only network namespace (nothing but 127.0.0.1/::1 is reachable)")
    else:
        t.note("fence: no network namespace available here; codex runs with plugins, analytics and update checks "
               "off and its proxies pointed at a refusing loopback port")  # fmt: skip
    t.note("deviation from the required auth mode (protocol v1 streams only from a codex signed in with "
           "appServerAuthMode, \"chatgpt\" by default; docs/protocol.md §3.4): a ChatGPT login cannot complete "
           "offline, so the drill sets appServerAuthMode \"apikey\" and logs in with a fake key")  # fmt: skip
    with fake_model_in_thread() as fake:
        peer = make_peer_home(root / "peer", fake.base_url)
        env = {k: v for k, v in peer.env.items() if k != "CODEX_HOME"}
        config = {
            "autoIngestEnabled": True,
            "streamEnrichmentEnabled": True,
            "appServerAuthMode": "apikey",
            "otlpReceiver": {"enabled": True, "host": "127.0.0.1", "port": 0},
            "codex": {"binaryPath": codex_bin, "home": str(peer.codex_home), "args": list(fence.CODEX_SAFE_ARGS)},
        }
        t.note(f"data dir {data_dir}; HOME and CODEX_HOME under {root}; fake model at {fake.base_url}")
        async with spawn_bridge(root, config=config, env=env, data_dir=data_dir) as host:
            d = Drill(host, t)
            t.header("Set-up")
            info = await d.step("bridge answers", "bridge_info",
                                expect=lambda r: None if r["protocolVersion"] == 1 else "protocolVersion")  # fmt: skip
            if info is None:
                return 1
            await d.step("receiver listening", "get_otlp_receiver_status",
                         expect=lambda r: None if r["state"] == "listening" else r["message"])  # fmt: skip
            await d.step("migration status", "get_collector_migration_status",
                         expect=lambda r: None if r["status"] != "failed" else r["lastError"])  # fmt: skip
            await d.step("migration dry run", "run_collector_migration", {"dryRun": True},
                         expect=lambda r: None if r["dryRun"] else "not a dry run")  # fmt: skip

            t.header("Hybrid capture")
            await d.handshake_and_login("hybrid")
            await d.expect_mode("mode is hybrid", ("HYBRID_ACTIVE",))
            started = await d.step("thread start", "codex_app_server_thread_start",
                                   {"cwd": str(peer.workdir), "approvalPolicy": "never"})  # fmt: skip
            thread_id = started["thread"]["id"] if started else None
            if thread_id:
                await d.turn("first real turn", thread_id, "[[scenario:chat]] first drill turn")

            t.header("Emergency OTEL-only fallback")
            await d.step("1. kill switch on", "codex_app_server_set_stream_kill_switch", {"enabled": True},
                         expect=lambda r: None if r["streamKillSwitch"] else "kill switch not on")  # fmt: skip
            await d.step("2. stop sidecar", "stop_codex_app_server",
                         expect=lambda r: None if r["state"] == "inactive" else f"state {r['state']}")  # fmt: skip
            await d.step("3. keep the baseline", "set_ingest_config", {"autoIngestEnabled": True},
                         expect=lambda r: None if r["autoIngestEnabled"] else "baseline off")  # fmt: skip
            await d.expect_mode("4. confirm mode", ("OTEL_ONLY",))

            t.header("Recovery back to hybrid")
            await d.step("1. kill switch off", "codex_app_server_set_stream_kill_switch", {"enabled": False},
                         expect=lambda r: None if not r["streamKillSwitch"] else "kill switch still on")  # fmt: skip
            await d.handshake_and_login("2-4.")
            await d.expect_mode("5. re-check mode", ("HYBRID_ACTIVE",))
            if thread_id:
                await d.step("resume the thread", "codex_app_server_thread_resume", {"threadId": thread_id})
                await d.turn("second real turn", thread_id, "[[scenario:chat]] second drill turn")

            t.header("Go / No-Go")
            await anyio.sleep(stable_seconds + 0.5)
            gate = await host.call("get_release_gate", {"windowHours": 1, "stableSeconds": stable_seconds})
            for check in gate["checks"]:
                t.add(check["name"], "get_release_gate", None, "ok" if check["ok"] else "fail", check["detail"])
            await host.call("stop_codex_app_server")
    verdict = gate["verdict"]
    failures = t.failures
    t.header(
        f"verdict: {'GO' if verdict == 'go' else 'NO-GO'}" + (f" ({len(failures)} failed steps)" if failures else "")
    )
    return 0 if verdict == "go" and not failures else 1
