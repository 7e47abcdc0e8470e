"""The first status after spawn: what the bridge has loaded when it answers, and that the answer is true.

The ready time (docs/performance.md, "ready") is the time until the first
``get_capture_reliability_status`` is answered. Whatever no status needs is
imported on first use or after that answer: the export's SDK, queue and HTTP
sender only once an endpoint is configured, the WebSocket stack only in attach
mode, the collector service on the first migration command, OpenSSL with the
first token checked, the OTEL mapping, the protobuf decoders and the HTTP parser
after the answer. These tests spawn the real bridge, record ``sys.modules`` the
moment its reliability service computes the first status (a prelude wraps the
method from outside), and check both what was loaded then and what the status
says. No timing is asserted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support.host import spawn_bridge

# Never needed by a first status of a bridge in spawn mode without export (each is loaded on first use).
DEFERRED = (
    "bridge.enrichment.scheduler",  # the export's queue and send loop
    "bridge.enrichment.sender",
    "bridge.enrichment.enrich",  # the OpenTelemetry SDK
    "opentelemetry.sdk",
    "urllib.request",
    "bridge.sidecar.websocket",  # attach mode's WebSocket stack
    "wsproto",
    "bridge.collector.service",  # the migration commands' service
    "bridge.collector.execute",
    "bridge.receiver.mapping",  # the OTEL baseline's mapping: with the first stored records
    "google.protobuf",  # the OTLP decoders: warmed up after the first answer
    "h11",  # the receiver's HTTP parsing: with its first connection (the listener is up before the answer)
    "bridge.receiver.http_connection",
    "bridge.receiver.intake",  # the request steps, the hand-off's messages, the records they carry
    "bridge.receiver.decoder_wire",
    "bridge.receiver.records",
    "hmac",  # OpenSSL: with the first receiver key or approval token checked (bridge.tokens)
    "_hashlib",
)


def recording_prelude(path: Path) -> str:
    """Python run before ``serve``: the first ``ReliabilityService.status`` call writes ``sys.modules`` to ``path``."""
    return (
        "import json as _json, sys as _sys\n"
        "from bridge.reliability import service as _service\n"
        "_original_status = _service.ReliabilityService.status\n"
        "def _status(self):\n"
        f"    with open({str(path)!r}, 'a') as out:\n"
        "        out.write(_json.dumps(sorted(_sys.modules)) + '\\n')\n"
        "    return _original_status(self)\n"
        "_service.ReliabilityService.status = _status\n"
    )


def loaded_at_first_status(path: Path) -> set[str]:
    first = path.read_text().splitlines()[0]
    return set(json.loads(first))


def loaded(modules: set[str], name: str) -> bool:
    return name in modules or any(m.startswith(name + ".") for m in modules)


async def test_the_first_status_is_true_without_the_export_attach_or_migration_code(tmp_path: Path) -> None:
    record = tmp_path / "modules.jsonl"
    async with spawn_bridge(
        tmp_path, env={"OTEL_EXPORTER_OTLP_ENDPOINT": ""}, prelude=recording_prelude(record)
    ) as host:
        status: dict[str, Any] = await host.call("get_capture_reliability_status")  # the first request after spawn
        modules = loaded_at_first_status(record)
        early = [name for name in DEFERRED if loaded(modules, name)]
        assert not early, f"loaded before the first status (it adds to the ready time; import on first use): {early}"

        # What it says is what is true: export off (nothing configured), codex not started, receiver listening.
        export = status["metrics"]["export"]
        assert (export["state"], export["endpoint"], export["queueBatches"]) == ("off", None, 0)
        assert status["appServer"]["state"] == "inactive"
        assert status["facts"]["receiverState"] == "listening"
        assert status["mode"] == "FAILURE" and "autoIngestEnabled" in status["reasons"][0]

        # The migration commands load their service on first use, and work.
        migration = await host.call("get_collector_migration_status")
        assert migration["status"] == "not_needed" and migration["migrationRequired"] is False
        dry = await host.call("run_collector_migration", {"dryRun": True})
        assert (dry["dryRun"], dry["migrated"], dry["status"]["status"]) == (True, False, "not_needed")


async def test_with_an_endpoint_the_first_status_reports_the_export_it_started(tmp_path: Path) -> None:
    record = tmp_path / "modules.jsonl"
    config = {"export": {"endpoint": "http://127.0.0.1:9"}}  # nothing listens there: sends fail and wait on disk
    async with spawn_bridge(tmp_path, config=config, prelude=recording_prelude(record)) as host:
        status = await host.call("get_capture_reliability_status")
        modules = loaded_at_first_status(record)
        assert loaded(modules, "bridge.enrichment.enrich") and loaded(modules, "bridge.enrichment.scheduler")
        export = status["metrics"]["export"]
        assert (export["state"], export["endpoint"], export["origin"]) == ("on", "http://127.0.0.1:9", "config")
        assert (tmp_path / "data" / "export-queue").is_dir()
