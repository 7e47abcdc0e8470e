"""The composition root: the objects one running bridge is made of.

Host command handlers receive the :class:`App`; subsystems receive only the
pieces they need (config, database, notifier), never the App or the host.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import msgspec

from bridge.config.paths import DataDir
from bridge.config.store import ConfigStore
from bridge.host.notify import Notifier
from bridge.store.db import Database

if TYPE_CHECKING:
    from bridge.capture.approvals import ApprovalBroker
    from bridge.capture.service import CaptureService
    from bridge.enrichment.enrichment_service import EnrichmentService
    from bridge.receiver.baseline_window import BaselineWindow
    from bridge.receiver.receiver import ReceiverService
    from bridge.reliability.service import ReliabilityService
    from bridge.sidecar.supervisor import Supervisor
    from bridge.transcript.recorder import BridgeTranscript


class App(msgspec.Struct):
    data_dir: DataDir
    config: ConfigStore
    db: Database
    notifier: Notifier
    framing: str | None = None
    shutdown_requested: anyio.Event = msgspec.field(default_factory=anyio.Event)
    # Subsystems: one typed attribute each, set by bridge.host.services.start.
    capture: CaptureService | None = None
    approvals: ApprovalBroker | None = None
    receiver: ReceiverService | None = None
    baseline: BaselineWindow | None = None  # made with the first events the receiver hands on
    enrichment: EnrichmentService | None = None
    sidecar: Supervisor | None = None
    reliability: ReliabilityService | None = None
    transcript: BridgeTranscript | None = None
