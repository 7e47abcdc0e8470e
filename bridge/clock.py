"""Wall-clock time as the bridge writes it, in one place.

Every timestamp on the wire, in the store, in transcripts and in logs is
ISO-8601 UTC with milliseconds and a ``Z`` (``2026-12-03T06:55:00.128Z``);
stored times are integer milliseconds since the epoch; file names carry a
compact stamp (``20261203T065500Z``). Pure apart from reading the clock, and
standard library only (``time``): cheap enough for the start-up path.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime


def now_ms() -> int:
    """Milliseconds since the epoch, now."""
    return time.time_ns() // 1_000_000


_last_second: tuple[int | None, str] = (None, "")  # an epoch second and its formatted prefix: strftime once a second


def iso_ms(ms: int) -> str:
    """``ms`` (epoch milliseconds) as ISO-8601 UTC with milliseconds."""
    global _last_second
    seconds, millis = divmod(int(ms), 1000)
    second, prefix = _last_second  # one tuple: any thread sees a whole pair
    if second != seconds:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        _last_second = (seconds, prefix)
    return "%s.%03dZ" % (prefix, millis)  # noqa: UP031 (cheaper than an f-string on a hot path)


def iso_seconds(wall: float) -> str:
    """``wall`` (epoch seconds, as ``time.time()`` gives) as ISO-8601 UTC with milliseconds (truncated)."""
    return iso_ms(int(wall * 1000))


def now_iso() -> str:
    return iso_seconds(time.time())


def iso_or_none(ms: int | float | None) -> str | None:
    """:func:`iso_ms`, with ``None`` passed through (a time that has not happened)."""
    return None if ms is None else iso_ms(int(ms))


def stamp(wall: float | None = None) -> str:
    """A compact UTC stamp for file names: ``20261203T065500Z``."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if wall is None else wall))


def iso_datetime(moment: datetime) -> str:
    """An aware ``datetime`` to the second, ``Z``-suffixed (the migration journal's times)."""
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_iso_ms(text: str) -> int | None:
    """Epoch milliseconds of an ISO-8601 timestamp (``Z`` or an offset; without one, UTC); None if it is not one."""
    from datetime import UTC, datetime

    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)
