"""The enrichment export as one subsystem: plan, providers, observer, queue.

It decides from ``export.endpoint`` (else the standard
``OTEL_EXPORTER_OTLP_*`` variables) whether export is on, refuses the
bridge's own OTLP receiver as a target, and while on maps every committed
capture batch (:meth:`observe`, a pipeline observer) to spans and log
records that wait in the on-disk queue until the endpoint takes them. The
OpenTelemetry SDK and encoders, the queue, the scheduler and the HTTP sender
(``urllib.request``) are imported only once export is first switched on, on a
worker thread, so a bridge without export never pays for them (nor does the
first status after spawn: what :meth:`status` reports needs only the plan).
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import TaskGroup

from bridge.config.model import IngestConfig
from bridge.enrichment.targets import ExportTarget, Plan, own_receiver_refusal, receiver_addresses, resolve

if TYPE_CHECKING:
    from bridge.capture.rows import Applied
    from bridge.enrichment.enrich import Enricher
    from bridge.enrichment.scheduler import OtlpExport, QueueLimits, RetryPolicy
    from bridge.enrichment.sender import PostFn

log = logging.getLogger("bridge.enrichment.export")  # one logger for the whole export path

CLOSE_BUDGET_S = 0.5
_EXPORT_MODULES = ("bridge.enrichment.scheduler", "bridge.enrichment.enrich")


class EnrichmentService:
    def __init__(
        self,
        config: IngestConfig,
        queue_dir: Path,
        *,
        receiver_endpoint: Callable[[], str | None] = lambda: None,
        env: Mapping[str, str] | None = None,
        limits: QueueLimits | None = None,
        retry: RetryPolicy | None = None,
        post: PostFn | None = None,  # None: bridge.enrichment.sender.post_http
    ) -> None:
        self._config = config
        self._queue_dir = queue_dir
        self._receiver_endpoint = receiver_endpoint
        self._env = env  # None: the process environment, read at every apply
        self._limits = limits
        self._retry = retry
        self._post = post
        self._tg: TaskGroup | None = None
        self.plan = Plan("off")
        self.refusal: str | None = None
        self.failure: str | None = None
        self.export: OtlpExport | None = None
        self.enricher: Enricher | None = None
        self._active = False
        self._said: tuple[Any, ...] | None = None

    # ------------------------------------------------------------ the observer
    def observing(self) -> bool:
        """Whether :meth:`observe` does anything now (export on): the pipeline asks before handing events over."""
        return self._active and self.enricher is not None

    def observe(self, applied: Sequence[Applied]) -> None:
        """Pipeline observer (event loop): build spans/log records; never waits on disk or network."""
        if self._active and self.enricher is not None and applied:
            self.enricher.observe(applied)

    # ------------------------------------------------------------ lifecycle
    async def start(self, tg: TaskGroup) -> None:
        self._tg = tg
        await self._apply()

    async def apply_config(self, config: IngestConfig) -> None:
        """Re-plan after a config change (endpoint, headers, or the own receiver's address)."""
        self._config = config
        await self._apply()

    async def close(self) -> None:
        """Put what is still in memory on disk (bounded); unsent batches are sent after the next start."""
        self._active = False
        if self.export is not None:
            await self.export.close(CLOSE_BUDGET_S)

    def _receivers(self) -> list[tuple[str, int]]:
        rc = self._config.otlp_receiver
        return receiver_addresses(rc.host, rc.port, rc.enabled, self._receiver_endpoint())

    def _refuse(self, target: ExportTarget) -> str | None:
        return own_receiver_refusal(target, self._receivers())

    async def _apply(self) -> None:
        env = self._env if self._env is not None else dict(os.environ)
        cfg = self._config.export
        plan = resolve(cfg.endpoint, cfg.headers, env)
        refusal = self._refuse(plan.target) if plan.target is not None else None
        self.plan, self.refusal = plan, refusal
        self._say(plan, refusal)
        if plan.target is None or refusal is not None:
            self._active = False
            if self.export is not None:
                self.export.set_target(None)
            return
        try:
            await self._ensure_running()
        except Exception as exc:  # e.g. the data dir is not writable: the rest of the bridge runs on
            self.failure = f"the export queue in {self._queue_dir} cannot be used ({exc}); export is off"
            log.exception("%s", self.failure)
            self._active = False
            return
        assert self.export is not None
        self.failure = None
        self.export.set_target(plan.target)
        self._active = True

    async def _ensure_running(self) -> None:
        if self.export is not None:
            return
        # the SDK, the queue and urllib.request: imported off the loop
        await anyio.to_thread.run_sync(lambda: [importlib.import_module(m) for m in _EXPORT_MODULES])
        from bridge.enrichment.enrich import Enricher
        from bridge.enrichment.providers import build_providers
        from bridge.enrichment.scheduler import OtlpExport
        from bridge.enrichment.sender import post_http

        export = OtlpExport(self._queue_dir, limits=self._limits, retry=self._retry, post=self._post or post_http,
                            refuse=self._refuse)  # fmt: skip
        await export.open()
        self.enricher = Enricher(build_providers(export.outbox))
        self.export = export
        if self._tg is not None:
            self._tg.start_soon(export.run)

    def _say(self, plan: Plan, refusal: str | None) -> None:
        """One log line per change of plan (never the headers)."""
        said = (plan.state, plan.target.endpoint if plan.target else None, plan.reason, refusal)
        if said == self._said:
            return
        self._said = said
        if refusal:
            log.warning("%s", refusal)
        elif plan.state == "invalid":
            log.warning("export is off: %s", plan.reason)
        elif plan.target is not None:
            log.info("exporting enrichment over OTLP/HTTP to %s (from %s)", plan.target.endpoint,
                     "export.endpoint" if plan.target.origin == "config" else "OTEL_EXPORTER_OTLP_*")  # fmt: skip
        else:
            log.info("enrichment export is off (no export.endpoint, no OTEL_EXPORTER_OTLP_ENDPOINT)")

    # ------------------------------------------------------------ status
    def status(self) -> dict[str, Any]:
        """For the reliability status: state, endpoint, queue depth, drops, sends, last error."""
        plan = self.plan
        state: str = plan.state
        refusal = self.refusal or (self.export.refused if self.export is not None and self._active else None)
        if refusal:
            state = "refused"
        elif self.failure and plan.target is not None:
            state = "error"
        out: dict[str, Any] = {
            "state": state,
            "endpoint": plan.target.endpoint if plan.target else None,
            "origin": plan.target.origin if plan.target else None,
            "reason": refusal or (self.failure if state == "error" else plan.reason),
        }
        if self.export is not None:
            out.update(self.export.metrics())
        else:
            out.update({"queueBatches": 0, "queueBytes": 0, "droppedBatches": 0, "droppedRecords": 0,
                        "sentBatches": 0, "rejectedBatches": 0, "failedAttempts": 0, "consecutiveFailures": 0,
                        "lastError": None, "lastErrorAtIso": None, "lastSentAtIso": None})  # fmt: skip
        out["spansBuilt"] = self.enricher.spans if self.enricher else 0
        out["logRecordsBuilt"] = self.enricher.log_records if self.enricher else 0
        return out
