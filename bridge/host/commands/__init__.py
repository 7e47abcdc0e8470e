"""Host command modules; importing this package registers every command."""

from bridge.host.commands import (  # noqa: F401
    approvals,
    bridge,
    capture,
    config,
    events,
    migration,
    receiver,
    reliability,
    sidecar,
    threads,
)
