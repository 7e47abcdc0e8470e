"""The one form of wall-clock time the bridge writes (bridge/clock.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bridge import clock


def test_iso_ms_is_utc_with_milliseconds_and_z() -> None:
    assert clock.iso_ms(0) == "1970-01-01T00:00:00.000Z"
    assert clock.iso_ms(1_764_745_500_128) == "2025-12-03T07:05:00.128Z"


def test_seconds_are_truncated_to_the_millisecond_not_rounded() -> None:
    assert clock.iso_seconds(1.9999) == "1970-01-01T00:00:01.999Z"


def test_none_passes_through() -> None:
    assert clock.iso_or_none(None) is None
    assert clock.iso_or_none(1000) == "1970-01-01T00:00:01.000Z"


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("2025-12-03T07:05:00.128Z", 1_764_745_500_128),
        ("2025-12-03T07:05:00.128", 1_764_745_500_128),  # no offset: UTC
        ("2025-12-03T08:05:00.128+01:00", 1_764_745_500_128),
        (" 2025-12-03T07:05:00Z ", 1_764_745_500_000),
        ("yesterday", None),
        ("", None),
    ],
)
def test_parse_iso_ms(text: str, ms: int | None) -> None:
    assert clock.parse_iso_ms(text) == ms


def test_a_written_time_reads_back() -> None:
    now = clock.now_ms()
    assert clock.parse_iso_ms(clock.iso_ms(now)) == now


def test_the_journal_form_is_to_the_second() -> None:
    assert clock.iso_datetime(datetime(2025, 12, 3, 7, 5, 0, 128000, tzinfo=UTC)) == "2025-12-03T07:05:00Z"
    assert clock.stamp(0) == "19700101T000000Z"


def test_consecutive_times_across_second_and_day_boundaries_format_like_strftime() -> None:
    """iso_ms formats a second once and reuses it: the reuse never leaks into another second."""
    import time

    start = 1_764_806_399_000  # 2025-12-03T23:59:59.000Z, one second before midnight
    for ms in [*range(start - 2, start + 2_003, 7), start, -1, 0, start]:
        seconds, millis = divmod(ms, 1000)
        want = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"
        assert clock.iso_ms(ms) == want
