"""Bringing the subsystems of a running bridge up and down, in order.

``start`` builds each subsystem, attaches it to the :class:`App` and starts
its background tasks in ``tg``; ``stop`` winds them down in reverse order
within the shutdown budget (CONTRACT §1: exit within 3 s).
"""

from __future__ import annotations

from anyio.abc import TaskGroup

from bridge.host.app import App


async def start(app: App, tg: TaskGroup) -> None:
    """Bring every subsystem up. Each subsystem adds its lines here."""


async def stop(app: App) -> None:
    """Stop every subsystem, newest first, flushing what is durable."""
