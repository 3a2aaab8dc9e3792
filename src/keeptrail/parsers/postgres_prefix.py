"""PostgreSQL ``log_line_prefix``: compile a configured prefix, or split a line without one.

A stderr line is ``PREFIX SEVERITY:  MESSAGE``. With the server's ``log_line_prefix`` known,
:func:`compile_prefix` turns it into one anchored regex (``%m [%p] %q%u@%d `` →
``(?P<m>...) \\[(?P<p>\\d+)\\] (?:(?P<u>\\S*)@(?P<d>\\S*) )?``). Without it,
:func:`split_auto` finds the first severity marker and reads the usual ``user=`` / ``db=`` /
``client=`` / ``user@db`` / ``[pid]`` pieces from what precedes it — the layouts of Debian,
pgbadger's docs, RDS and Cloud SQL all work that way.

User, database and application names are matched as runs of non-blank characters: a name
with a space does not fit the prefix, and a name cannot carry a forged ``client=1.2.3.4``
past the real one, because the client field only accepts address characters and must be
followed by the severity. The text layout stays ambiguous for hostile names; ``csvlog`` and
``jsonlog`` are not, and are the formats to prefer where it matters.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Final

from keeptrail.event import datetime_to_micros
from keeptrail.parsers.numerals import ascii_int, epoch_micros

SEVERITIES: Final = (
    "LOG|ERROR|FATAL|PANIC|WARNING|NOTICE|INFO|DEBUG[1-5]?|DETAIL|HINT|CONTEXT|STATEMENT|"
    "QUERY|LOCATION"
)
# Lines that add to the message before them rather than start a new one.
FOLLOWERS: Final = frozenset({"DETAIL", "HINT", "CONTEXT", "STATEMENT", "QUERY", "LOCATION"})

_TS = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
_ZONE = r"(?: (?:[A-Za-z]{1,6}|[+-]\d\d(?::?\d\d)?))?"
_ESCAPES: Final[dict[str, str]] = {
    "m": rf"(?P<m>{_TS}\.\d{{3}}{_ZONE})",
    "t": rf"(?P<t>{_TS}{_ZONE})",
    "n": r"(?P<n>\d{9,11}\.\d{3})",
    "p": r"(?P<p>\d+)",
    "u": r"(?P<u>\S*?)",
    "d": r"(?P<d>\S*?)",
    "a": r"(?P<a>\S*?)",
    "h": r"(?P<h>[\w.:%\[\]-]*)",
    "r": r"(?P<h>[\w.:%\[\]-]*?)(?:\((?P<port>\d+)\))?",
    "l": r"\d+",
    "c": r"(?P<c>[0-9a-f]+\.[0-9a-f]+)",
    "s": rf"{_TS}{_ZONE}",
    "v": r"[\d/-]*",
    "x": r"\d+",
    "e": r"(?P<e>[0-9A-Z]{5})",
    "i": r"(?P<i>[^\]\n]*?)",
    "b": r"(?P<b>[\w ]*?)",
    "Q": r"-?\d+",
    "L": r"[\w.:\[\]-]*",
    "P": r"\d*",
    "%": "%",
}
_ZONES: Final[dict[str, int]] = {  # minutes east of UTC for the abbreviations PostgreSQL prints
    "UTC": 0, "GMT": 0, "Z": 0, "WET": 0, "WEST": 60, "BST": 60, "CET": 60, "CEST": 120,
    "MET": 60, "MEST": 120, "EET": 120, "EEST": 180, "MSK": 180, "IST": 330, "SGT": 480,
    "HKT": 480, "AWST": 480, "JST": 540, "KST": 540, "ACST": 570, "AEST": 600, "AEDT": 660,
    "NZST": 720, "NZDT": 780, "HST": -600, "AKST": -540, "AKDT": -480, "PST": -480,
    "PDT": -420, "MST": -420, "MDT": -360, "CST": -360, "CDT": -300, "EST": -300, "EDT": -240,
    "AST": -240, "ADT": -180, "NST": -210, "NDT": -150, "BRT": -180, "ART": -180,
}  # fmt: skip


def compile_prefix(prefix: str) -> re.Pattern[str]:
    """The anchored regex for ``PREFIX SEVERITY:  MESSAGE`` under a ``log_line_prefix``.

    Groups: the escapes' letters (``m``, ``t``, ``n``, ``p``, ``u``, ``d``, ``a``, ``h``,
    ``port``...), ``sev`` and ``msg``. ``%q`` makes the rest of the prefix optional, as the
    server leaves it out for processes without a session. Padding (``%-10u``) is accepted.
    """
    out: list[str] = []
    seen: set[str] = set()
    optional = 0
    i = 0
    while i < len(prefix):
        ch = prefix[i]
        if ch != "%" or i + 1 == len(prefix):
            out.append(re.escape(ch))
            i += 1
            continue
        j = i + 1
        while j < len(prefix) and (prefix[j].isdigit() or prefix[j] == "-"):
            j += 1
        padded = j > i + 1
        letter = prefix[j] if j < len(prefix) else "%"
        i = j + 1
        if letter == "q":
            out.append("(?:")
            optional += 1
            continue
        pattern = _ESCAPES.get(letter, r"\S*?")
        if "(?P<" in pattern:
            names = re.findall(r"\(\?P<(\w+)>", pattern)
            if seen.intersection(names):  # a repeated escape matches the same way, unnamed
                pattern = re.sub(r"\(\?P<\w+>", "(?:", pattern)
            seen.update(names)
        out.append(r" *" + pattern + r" *" if padded else pattern)
    body = "".join(out).rstrip("\\ ") + ")?" * optional
    return re.compile(rf"{body}\s*(?P<sev>{SEVERITIES}): +(?P<msg>.*)", re.DOTALL)


_AUTO: Final = re.compile(
    rf"(?P<ts>{_TS}(?:\.\d{{1,6}})?{_ZONE})?(?P<mid>[^\n]*?)(?<![^\s:\]])"
    rf"(?P<sev>{SEVERITIES}): +(?P<msg>.*)",
    re.DOTALL,
)
_PID = re.compile(r"\[(\d{1,10})\]")
_KEYED = re.compile(r"(?:^|[\s,\[:])(user|usr|db|database|app|appli|client|host)=([^\s,]*)")
_AT = re.compile(r"(?:^|[\s:])([^\s:@\[\]]+)@([^\s:@\[\]]+)(?=[\s:]|$)")
_RHOST = re.compile(r"(?:^:|^|:)([\w.:%-]+?)(?:\((\d+)\))?:[^\s:@]+@")
_KEY_FIELD: Final = {
    "usr": "u", "user": "u", "db": "d", "database": "d", "app": "a", "appli": "a",
}  # fmt: skip


def split_auto(line: str) -> dict[str, str | None] | None:
    """Fields of a line whose prefix is unknown: ``ts``, ``p``, ``u``, ``d``, ``a``, ``h``,
    ``port``, ``sev``, ``msg``; ``None`` when no severity marker is found.

    The first severity marker ends the prefix; for ``user=`` and ``db=`` the first occurrence
    counts and for ``client=`` the last (the layouts put the client after the names).
    """
    m = _AUTO.match(line)
    if m is None:
        return None
    mid = m["mid"]
    out: dict[str, str | None] = {"ts": m["ts"], "sev": m["sev"], "msg": m["msg"]}
    pid = _PID.search(mid)
    out["p"] = pid[1] if pid else None
    for key, value in _KEYED.findall(mid):
        if key in {"client", "host"}:
            out["h"] = value
        else:
            out.setdefault(_KEY_FIELD[key], value)
    if "u" not in out:
        at = _AT.search(mid)
        if at is not None:
            out["u"], out["d"] = at[1], at[2]
            rhost = _RHOST.search(mid)
            if rhost is not None and "h" not in out:
                out["h"], out["port"] = rhost[1], rhost[2]
    return out


class Clock:
    """Reads PostgreSQL timestamps; one per stream, caching the minutes and zones it has seen."""

    __slots__ = ("_minutes", "_zones", "default_tz")

    def __init__(self, default_tz: tzinfo = UTC) -> None:
        self.default_tz = default_tz
        self._minutes: dict[tuple[str, str], int] = {}
        self._zones: dict[str, tzinfo] = {}

    def parse(self, text: str) -> int | None:
        """``2021-01-04 00:05:06.011 UTC`` (``%m``, ``%t``, csvlog, jsonlog) → epoch µs.

        Zone abbreviations come from a fixed table (PostgreSQL prints the abbreviation of
        ``log_timezone``); an unknown one, or none, means ``default_tz``. Numeric offsets
        (``+03``, ``-0330``) are read as such; ``%n`` epoch seconds too. ``None`` if invalid.
        """
        if len(text) < 19 or text[4] != "-" or text[13] != ":":
            return epoch_micros(text)
        rest = text[19:]
        frac_text = ""
        if rest[:1] == ".":
            frac_text = rest[1:].partition(" ")[0]
            rest = rest[1 + len(frac_text) :]
        zone_text = rest.strip()
        key = (text[:16], zone_text)
        minute = self._minutes.get(key)
        if minute is None:
            tz = self._zone(zone_text) if zone_text else self.default_tz
            try:
                local = datetime.strptime(text[:16], "%Y-%m-%d %H:%M").replace(tzinfo=tz)
            except ValueError:
                return None
            minute = datetime_to_micros(local)
            if len(self._minutes) > 4096:
                self._minutes.clear()
            self._minutes[key] = minute
        seconds = ascii_int(text[17:19], max_value=60)
        if seconds is None:
            return None
        frac = 0
        if frac_text:
            if not (frac_text.isascii() and frac_text.isdigit()):
                return None
            frac = int(frac_text[:6].ljust(6, "0"))
        return minute + seconds * 1_000_000 + frac

    def _zone(self, text: str) -> tzinfo:
        tz = self._zones.get(text)
        if tz is not None:
            return tz
        minutes = _ZONES.get(text.upper())
        if minutes is None and text[0] in "+-":
            digits = text[1:].replace(":", "")
            hours = ascii_int(digits[:2], max_value=23)
            if hours is not None:
                minutes = hours * 60 + (ascii_int(digits[2:4], max_value=59) or 0)
                minutes = -minutes if text[0] == "-" else minutes
        tz = self.default_tz if minutes is None else timezone(timedelta(minutes=minutes))
        if len(self._zones) < 256:
            self._zones[text] = tz
        return tz
