"""Times as users write them (``15m``, ``2024-01-01``, ISO timestamps, ``now``) to microseconds.

Pure: the current time is an argument (``now_us``), never read here, so ``--since 24h`` is
testable and two bounds of one command are relative to the same instant.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Final

from keeptrail.event import datetime_to_micros

US_PER_UNIT: Final[dict[str, int]] = {
    "s": 1_000_000,
    "m": 60_000_000,
    "h": 3_600_000_000,
    "d": 86_400_000_000,
    "w": 604_800_000_000,
}
_DAY_US: Final = US_PER_UNIT["d"]
_DURATION: Final = re.compile(r"(?:[0-9]{1,9}[smhdw])+")
_DURATION_PART: Final = re.compile(r"([0-9]{1,9})([smhdw])")
_DATE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# A timestamp: date, 'T' or space, then a time; the rest is left to datetime.fromisoformat.
_TIMESTAMP: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}[0-9:.,+\-Z]*")


@dataclass(frozen=True, slots=True)
class TimeRange:
    """Half-open ``[since, until)`` in microseconds; ``None`` leaves that side open."""

    since: int | None
    until: int | None


def parse_duration(text: str) -> int:
    """Microseconds in ``90s``, ``15m``, ``24h``, ``7d``, ``2w`` or a sum like ``1h30m``."""
    cleaned = text.strip().lower()
    if not _DURATION.fullmatch(cleaned):
        raise ValueError(
            f"invalid duration {text!r}: expected a number and a unit s, m, h, d or w "
            "(e.g. 15m, 24h, 7d, 1h30m)"
        )
    return sum(int(n) * US_PER_UNIT[unit] for n, unit in _DURATION_PART.findall(cleaned))


def parse_instant(text: str) -> tuple[int, int]:
    """An absolute time as ``(start, end)`` microseconds, end exclusive.

    A date (``2024-01-01``, UTC) spans its whole day; a timestamp is a single microsecond.
    Queries use the span so that ``time:2024-01-01`` means "that day" and ``time<=`` a date
    includes the day, as date-rounding search engines do. A timestamp without an offset
    is UTC, because a server log search must not depend on the server's local zone.
    """
    cleaned = text.strip()
    if _DATE.fullmatch(cleaned):
        try:
            day = date.fromisoformat(cleaned)
        except ValueError:
            raise ValueError(f"invalid date {text!r}: expected YYYY-MM-DD") from None
        start = datetime_to_micros(datetime(day.year, day.month, day.day, tzinfo=UTC))
        return start, start + _DAY_US
    if _TIMESTAMP.fullmatch(cleaned):
        try:
            moment = datetime.fromisoformat(cleaned)
        except ValueError:
            moment = None
        if moment is not None:
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            try:
                start = datetime_to_micros(moment)
            except OverflowError:
                raise ValueError(f"time {text!r} is out of range") from None
            return start, start + 1
    raise ValueError(
        f"invalid time {text!r}: expected a date (2024-01-01) or an ISO timestamp "
        "(2024-01-01T12:00:00Z, 2024-01-01T12:00:00+02:00)"
    )


def parse_time_bound(text: str, *, now_us: int) -> int:
    """One ``--since``/``--until`` value in microseconds.

    ``now``; a duration meaning that long before ``now_us`` (``15m``, ``7d``); a date
    (midnight UTC, as journalctl reads ``--until 2024-01-31``); or an ISO timestamp.
    """
    cleaned = text.strip()
    if cleaned.lower() == "now":
        return now_us
    if cleaned[:1].isdigit() and _DURATION.fullmatch(cleaned.lower()):
        return now_us - parse_duration(cleaned)
    return parse_instant(cleaned)[0]


def parse_time_range(since: str | None, until: str | None, *, now_us: int) -> TimeRange:
    """Both bounds of a command, relative to the same ``now_us``; since must not pass until."""
    low = None if since is None else parse_time_bound(since, now_us=now_us)
    high = None if until is None else parse_time_bound(until, now_us=now_us)
    if low is not None and high is not None and low > high:
        raise ValueError(f"--since ({since}) is later than --until ({until})")
    return TimeRange(low, high)
