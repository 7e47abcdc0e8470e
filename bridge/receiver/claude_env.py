"""``capture-bridge claude-env``: the environment that points Claude Code at a running receiver.

Reads ``<dataDir>/runtime.json`` (written by the running bridge) and
``<dataDir>/otlp.key`` and prints ``export NAME=value`` lines (docs/protocol.md §6),
for ``eval "$(capture-bridge claude-env)"``. Fails with a one-line reason when
no bridge of that data dir is listening.
"""

from __future__ import annotations

import argparse
import shlex
import sys

import msgspec

from bridge.config.paths import DataDir, process_alive, resolve_data_dir
from bridge.receiver.auth import HEADER_NAME, read_key


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="data dir (default: $CAPTURE_BRIDGE_HOME or the user data dir)")
    parser.add_argument(
        "--protocol",
        choices=("http/protobuf", "http/json"),
        default="http/protobuf",
        help="OTLP encoding Claude Code should use (default: http/protobuf)",
    )


class NoReceiver(Exception):
    """No running receiver could be found for the data dir (the message says why)."""


def receiver_endpoint(data_dir: DataDir) -> str:
    """The listening receiver's base URL from ``runtime.json``; :class:`NoReceiver` otherwise."""
    try:
        runtime = msgspec.json.decode(data_dir.runtime.read_bytes())
    except FileNotFoundError:
        raise NoReceiver(
            f"no running bridge found: {data_dir.runtime} does not exist (start `capture-bridge serve`)"
        ) from None
    except (OSError, msgspec.DecodeError) as exc:
        raise NoReceiver(f"cannot read {data_dir.runtime}: {exc}") from None
    receiver = runtime.get("otlpReceiver") if isinstance(runtime, dict) else None
    if not isinstance(receiver, dict) or not process_alive(runtime.get("pid")):
        raise NoReceiver(f"the bridge that wrote {data_dir.runtime} is not running (start `capture-bridge serve`)")
    endpoint = receiver.get("endpoint")
    if receiver.get("state") != "listening" or not isinstance(endpoint, str):
        raise NoReceiver(
            f"the bridge's OTLP receiver is {receiver.get('state', 'unknown')}, not listening "
            "(see get_otlp_receiver_status; enable it with set_otlp_receiver_enabled)"
        )
    return endpoint


def env_lines(endpoint: str, key: str, protocol: str = "http/protobuf") -> list[str]:
    """The ``export`` lines, shell-quoted."""
    values = [
        ("CLAUDE_CODE_ENABLE_TELEMETRY", "1"),
        ("OTEL_LOGS_EXPORTER", "otlp"),
        ("OTEL_METRICS_EXPORTER", "otlp"),
        ("OTEL_TRACES_EXPORTER", "otlp"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
        ("OTEL_EXPORTER_OTLP_HEADERS", f"{HEADER_NAME}={key}"),
        ("OTEL_LOG_USER_PROMPTS", "1"),
        ("OTEL_LOG_TOOL_DETAILS", "1"),
    ]
    return [f"export {name}={shlex.quote(value)}" for name, value in values]


def run(args: argparse.Namespace) -> int:
    data_dir = DataDir(resolve_data_dir(args.data_dir))
    try:
        endpoint = receiver_endpoint(data_dir)
    except NoReceiver as exc:
        print(f"capture-bridge claude-env: {exc}", file=sys.stderr)
        return 1
    key = read_key(data_dir.otlp_key)
    if key is None:
        print(f"capture-bridge claude-env: no usable key in {data_dir.otlp_key}", file=sys.stderr)
        return 1
    sys.stdout.write("\n".join(env_lines(endpoint, key, args.protocol)) + "\n")
    return 0
