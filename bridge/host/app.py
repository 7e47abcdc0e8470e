"""The composition root: the objects one running bridge is made of.

Host command handlers receive the :class:`App`; subsystems receive only the
pieces they need (config, database, notifier), never the App or the host.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import anyio

from bridge.config.paths import DataDir
from bridge.config.store import ConfigStore
from bridge.host.notify import Notifier
from bridge.store.db import Database


@dataclass
class App:
    data_dir: DataDir
    config: ConfigStore
    db: Database
    notifier: Notifier
    framing: str | None = None
    shutdown_requested: anyio.Event = field(default_factory=anyio.Event)
    # Subsystems: one typed attribute each, set by bridge.host.services.start.
