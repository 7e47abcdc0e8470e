"""Recording ``fixtures/otlp/``: what the real codex and Claude Code send over OTLP (fenced; ``make fixtures``).

Each peer runs once per protocol against the project's fake model API, with
its OTLP export pointed at a recording proxy in front of a real receiver (the
helpers of ``tests/receiver``). Every request body is kept as it was sent
(gzip removed), named ``<peer>-<protocol>/<nnn>-<signal>.<json|pb>``.

Run: ``python -m bridge.peers.fence -- .venv/bin/python -m tests.transcript.otlp_fixtures [--out DIR]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

import anyio

from bridge.drill.fake_model import FakeModel
from bridge.peers import fence
from bridge.peers.install import CODEX_VERSION, codex_native_binary
from bridge.receiver.codex_overrides import codex_otel_overrides
from tests.receiver.support import Captured, RecordingProxy, _host_port, run_peer, running_receiver, wait_until
from tests.support.claude import CLAUDE_VERSION, claude_binary, claude_env
from tests.support.fake_anthropic import FakeAnthropic

PROMPT = "Say hi to the OTLP fixture recorder."
RUNS = [("codex", "json"), ("codex", "binary"), ("claude", "http/json"), ("claude", "http/protobuf")]


def provider_args(base_url: str) -> list[str]:
    return [
        "-c", "model_provider=local", "-c", 'model_providers.local.name="local fake"',
        "-c", f'model_providers.local.base_url="{base_url}"', "-c", 'model_providers.local.wire_api="responses"',
        "-c", "model_providers.local.request_max_retries=1", "-c", "model_providers.local.stream_max_retries=1",
    ]  # fmt: skip


async def capture(peer: str, protocol: str, root: Path) -> list[Captured]:
    async with running_receiver(root) as rx, anyio.create_task_group() as tg:
        proxy = RecordingProxy(_host_port(rx.endpoint))
        await tg.start(proxy.serve)
        work = root / "work"
        work.mkdir(exist_ok=True)
        base = fence.peer_env(dict(os.environ), root / "home")
        if peer == "codex":
            fake = FakeModel()
            await tg.start(fake.serve)
            argv = [
                str(codex_native_binary()), *fence.CODEX_SAFE_ARGS,
                *codex_otel_overrides(proxy.endpoint, rx.key, protocol=protocol),  # type: ignore[arg-type]
                *provider_args(fake.base_url), "exec", "--skip-git-repo-check", PROMPT,
            ]  # fmt: skip
            env = base
        else:
            anthropic = FakeAnthropic()
            await tg.start(anthropic.serve)
            argv = [str(claude_binary()), "-p", PROMPT]
            env = claude_env(base, anthropic_base_url=anthropic.base_url, otlp_endpoint=proxy.endpoint,
                             otlp_headers=f"x-capture-bridge-key={rx.key}", protocol=protocol)  # fmt: skip
        finished = await run_peer(argv, env, work)
        if finished.returncode != 0:
            raise RuntimeError(f"{peer} failed ({finished.returncode}): {finished.stderr[-2000:]}")
        await wait_until(lambda: rx.service.counters.accepted >= len(proxy.requests()), 15, "the receiver")
        tg.cancel_scope.cancel()
    return proxy.requests()


def save(requests: list[Captured], target: Path) -> int:
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for index, request in enumerate(requests):
        signal = request.path.rstrip("/").rsplit("/", 1)[-1]
        suffix = "json" if request.is_json else "pb"
        (target / f"{index:03d}-{signal}.{suffix}").write_bytes(request.plain)
    return len(requests)


README = f"""\
# OTLP fixtures

OTLP/HTTP request bodies (gzip removed) exactly as the real peers sent them,
recorded by `tests/transcript/otlp_fixtures.py` (`make fixtures`), fenced:

    python -m bridge.peers.fence -- .venv/bin/python -m tests.transcript.otlp_fixtures --out fixtures/otlp

- `codex-json/`, `codex-binary/`: codex-cli {CODEX_VERSION} (native binary),
  `codex exec --skip-git-repo-check "{PROMPT}"` against the project's fake
  Responses API, its OTEL pointed at the bridge's receiver with the bridge's
  own `-c otel.*` overrides (`protocol = "json"` / `"binary"`).
- `claude-http-json/`, `claude-http-protobuf/`: Claude Code {CLAUDE_VERSION},
  `claude -p "{PROMPT}"` against the project's fake Messages API,
  `OTEL_EXPORTER_OTLP_PROTOCOL=http/json` / `http/protobuf`.

File names: `<nnn>-<signal>.<json|pb>` in the order sent (`signal`: logs, traces, metrics).
The receiver key travelled in a header and is not in the bodies.
`tests/transcript/test_otlp_fixtures.py` feeds every body to the bridge's receiver.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.transcript.otlp_fixtures")
    parser.add_argument("--out", default="fixtures/otlp")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for peer, protocol in RUNS:
        with tempfile.TemporaryDirectory(prefix=f"cb-otlp-{peer}-") as tmp:
            requests = anyio.run(capture, peer, protocol, Path(tmp))
        name = f"{peer}-{protocol.replace('/', '-')}"
        print(f"{name}: {save(requests, out / name)} requests")
    (out / "README.md").write_text(README)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
