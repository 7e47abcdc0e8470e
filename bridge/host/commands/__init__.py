"""Host command modules; importing this package registers every command.

``bridge_info`` and ``shutdown`` live in :mod:`bridge.host.info`, outside this
package, so the first answer after spawn needs none of the imports below.
"""

import bridge.host.info  # noqa: F401
from bridge.host.commands import (  # noqa: F401
    approvals,
    capture,
    config,
    events,
    migration,
    receiver,
    reliability,
    sidecar,
    threads,
)
