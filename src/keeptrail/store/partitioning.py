"""Partition names and days: pure, shared by every backend (docs/storage.md).

A partition holds the events of one UTC day of event ``time`` and one retention class, named
``p<YYYYMMDD>_<class>``. When a partition has been purged (or its encryption setting no
longer matches the store's) and more events arrive for the same day and class — a late log
file, say — they go to a new *generation* ``p<YYYYMMDD>_<class>-<n>`` (``-`` cannot appear in
a class name, so names never collide). Names are validated here and always quoted in SQL.
"""

from __future__ import annotations

import re
import time
from calendar import timegm
from typing import Final

DAY_US: Final = 86_400_000_000
CLASS_PATTERN: Final = re.compile(r"[a-z][a-z0-9_]{0,31}")
NAME_PATTERN: Final = re.compile(r"p[0-9]{8}_[a-z][a-z0-9_]{0,31}(?:-[0-9]{1,6})?")
DEFAULT_CLASS: Final = "default"


def day_number(time_us: int) -> int:
    """The UTC day of a time as ``YYYYMMDD``."""
    t = time.gmtime(time_us // 1_000_000)
    return t.tm_year * 10_000 + t.tm_mon * 100 + t.tm_mday


class DayCache:
    """:func:`day_number` with the result kept per epoch day (ingest asks once per event)."""

    __slots__ = ("_days",)

    def __init__(self) -> None:
        self._days: dict[int, int] = {}

    def __call__(self, time_us: int) -> int:
        epoch_day = time_us // DAY_US
        day = self._days.get(epoch_day)
        if day is None:
            day = self._days[epoch_day] = day_number(epoch_day * DAY_US)
        return day


def day_bounds(day: int) -> tuple[int, int]:
    """``[start, end)`` of a ``YYYYMMDD`` day in microseconds."""
    start = timegm((day // 10_000, day // 100 % 100, day % 100, 0, 0, 0)) * 1_000_000
    return start, start + DAY_US


def check_class(name: str) -> str:
    """A retention class name, or ``ValueError`` (it becomes part of SQL identifiers)."""
    if not CLASS_PATTERN.fullmatch(name):
        raise ValueError(f"invalid retention class {name!r}: use [a-z][a-z0-9_]{{0,31}}")
    return name


def partition_name(day: int, retention_class: str, generation: int = 1) -> str:
    """``p<YYYYMMDD>_<class>``, with ``-<generation>`` from the second generation on."""
    check_class(retention_class)
    base = f"p{day:08d}_{retention_class}"
    return base if generation <= 1 else f"{base}-{generation}"


def check_name(name: str) -> str:
    """A partition name as stored, or ``ValueError``; only checked names reach SQL."""
    if not NAME_PATTERN.fullmatch(name):
        raise ValueError(f"not a partition name: {name!r}")
    return name


def quoted(name: str) -> str:
    """The partition's table name as a quoted SQL identifier (the name is checked first)."""
    return f'"{check_name(name)}"'
