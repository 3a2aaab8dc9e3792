"""--since/--until values: durations, dates, timestamps and `now`, against an explicit now."""

from __future__ import annotations

import pytest

from keeptrail.query import (
    TimeRange,
    parse_duration,
    parse_instant,
    parse_time_bound,
    parse_time_range,
)

NOW = 1_717_243_200_000_000  # 2024-06-01T12:00:00Z
JAN1 = 1_704_067_200_000_000
S = 1_000_000


@pytest.mark.parametrize(
    ("text", "micros"),
    [
        ("90s", 90 * S),
        ("15m", 15 * 60 * S),
        ("24h", 24 * 3600 * S),
        ("7d", 7 * 86400 * S),
        ("2w", 14 * 86400 * S),
        ("1h30m", 90 * 60 * S),
        (" 15M ", 15 * 60 * S),
    ],
)
def test_durations(text: str, micros: int) -> None:
    """Durations with units s, m, h, d, w (and sums of them) convert to microseconds."""
    assert parse_duration(text) == micros


@pytest.mark.parametrize("text", ["", "15", "m", "15x", "1.5h", "-5m", "١٥m", "15 m"])
def test_bad_durations(text: str) -> None:
    """Anything that is not number+unit is a ValueError."""
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


def test_relative_bound_counts_back_from_now() -> None:
    """A duration as a bound means that long before the given now."""
    assert parse_time_bound("15m", now_us=NOW) == NOW - 15 * 60 * S
    assert parse_time_bound("now", now_us=NOW) == NOW
    assert parse_time_bound("NOW", now_us=NOW) == NOW


def test_dates_are_utc_midnight() -> None:
    """A date bound is midnight UTC of that day."""
    assert parse_time_bound("2024-01-01", now_us=NOW) == JAN1


@pytest.mark.parametrize(
    ("text", "micros"),
    [
        ("2024-01-01T00:00:00Z", JAN1),
        ("2024-01-01T00:00:00", JAN1),
        ("2024-01-01 00:00:00", JAN1),
        ("2024-01-01T01:00:00+01:00", JAN1),
        ("2023-12-31T19:00:00-05:00", JAN1),
        ("2024-01-01T00:00:00.250000Z", JAN1 + 250_000),
        ("2024-01-01T00:00", JAN1),
    ],
)
def test_timestamps(text: str, micros: int) -> None:
    """ISO timestamps with or without offset (no offset means UTC) are exact instants."""
    assert parse_time_bound(text, now_us=NOW) == micros
    assert parse_instant(text) == (micros, micros + 1)


def test_date_instant_spans_the_day() -> None:
    """As a query value, a date spans its whole day."""
    assert parse_instant("2024-01-01") == (JAN1, JAN1 + 86_400 * S)


@pytest.mark.parametrize(
    "text", ["yesterday", "2024-13-01", "2024-01-01T25:00", "01/02/2024", "2024-01-01Tfoo", ""]
)
def test_bad_times(text: str) -> None:
    """Unreadable times raise ValueError saying what is expected."""
    with pytest.raises(ValueError, match="invalid"):
        parse_time_bound(text, now_us=NOW)


def test_range_uses_one_now_and_checks_order() -> None:
    """Both bounds use the same now; since after until is an error."""
    assert parse_time_range("1h", "now", now_us=NOW) == TimeRange(NOW - 3600 * S, NOW)
    assert parse_time_range(None, None, now_us=NOW) == TimeRange(None, None)
    with pytest.raises(ValueError, match="later than"):
        parse_time_range("now", "1h", now_us=NOW)
