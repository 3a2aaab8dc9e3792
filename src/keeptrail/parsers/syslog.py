"""The syslog framings that wrap every Linux authentication message.

Three framings are found on real machines, and each is recognised by its first bytes:

* traditional BSD (RFC 3164): ``Feb 21 21:54:44 host prog[pid]: message`` — no year and no
  zone, so both come from the context: the zone is configured, the year is the one that puts
  the line at or before the reference time (a file's mtime, or the receive time) plus a month
  of clock skew. A December line read in January therefore lands in the previous year;
* RFC 3339 high precision, rsyslog's default on Debian since 12:
  ``2024-02-21T21:54:44.123456+01:00 host prog[pid]: message``;
* RFC 5424: ``<34>1 2024-02-21T21:54:44.123Z host app procid msgid [sd] message``.

Any of them may start with a ``<PRI>`` when it arrived over the network. The functions here
are pure: the reference time and zone are arguments.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Final

from keeptrail.event import datetime_to_micros
from keeptrail.parsers.base import SyslogMessage
from keeptrail.parsers.numerals import UINT32_MAX, ascii_int

# Month abbreviations as syslog, CLF and other logs write them (C locale), to 1..12.
MONTHS: Final = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
_SKEW_US: Final = 31 * 86_400 * 1_000_000

# The timestamp and pid patterns say [0-9], not \d (which also matches Arabic-Indic and other
# Unicode digits that int() would accept): a time or pid in other digits is not syslog framing.
# prog[pid]: — the tag is everything up to '[' or ':'; allow the odd characters real tags
# carry ("su(pam_unix)", "gdm-password", "/usr/sbin/cron", "sshd-session").
_TAG = r"(?P<prog>[^\s\[:]{1,64}(?:\([^\s)]{1,32}\))?)(?:\[(?P<pid>[0-9]{1,10})\])?:[ ]?"

_BSD = re.compile(
    r"(?:<(?P<pri>[0-9]{1,3})>)?"
    r"(?P<mon>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (?P<day>[ 0-9]?[0-9]) "
    r"(?P<hh>[0-9]{2}):(?P<mm>[0-9]{2}):(?P<ss>[0-9]{2})(?:\.(?P<frac>[0-9]{1,6}))? "
    r"(?:(?P<host>[^\s:\[]+) )?" + _TAG + r"(?P<msg>.*)",
    re.DOTALL,
)
_RFC3339 = re.compile(
    r"(?:<(?P<pri>[0-9]{1,3})>)?"
    r"(?P<ts>[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?"
    r"(?:Z|[+-][0-9]{2}:?[0-9]{2})) +"
    r"(?P<host>[^\s:\[]+) " + _TAG + r"(?P<msg>.*)",
    re.DOTALL,
)
_RFC5424 = re.compile(
    r"<(?P<pri>[0-9]{1,3})>1 "
    r"(?P<ts>-|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?"
    r"(?:Z|[+-][0-9]{2}:[0-9]{2})) "
    r"(?P<host>\S{1,255}) (?P<app>\S{1,48}) (?P<procid>\S{1,128}) (?P<msgid>\S{1,32}) "
    r"(?P<sd>-|(?:\[(?:[^\]\\\"]|\\.|\"(?:[^\"\\]|\\.)*\")*\])+)"
    r"(?: (?P<msg>.*))?",
    re.DOTALL,
)


@dataclass(slots=True)
class FrameContext:
    """What a framing needs from outside the line: a reference time and a zone.

    ``reference_us`` is the newest time a line can plausibly carry (the file's mtime, or when
    the line was received); ``tz`` is the zone of timestamps that carry none (BSD framing).
    """

    reference_us: int
    tz: tzinfo = UTC
    _minute_cache: dict[str, int] | None = None
    prefix_cache: dict[str, int] = field(default_factory=dict)

    def bsd_minute(self, mon: int, day: int, hh: int, mm: int) -> int | None:
        """Epoch µs of the start of that minute, with the year inferred; cached per minute."""
        key = f"{mon} {day} {hh} {mm}"
        cache = self._minute_cache
        if cache is None:
            cache = self._minute_cache = {}
        hit = cache.get(key)
        if hit is not None:
            return hit
        ref_year = datetime.fromtimestamp(self.reference_us / 1e6, UTC).year
        value: int | None = None
        for year in (ref_year + 1, ref_year, ref_year - 1, ref_year - 2, ref_year - 3):
            try:
                local = datetime(year, mon, day, hh, mm, tzinfo=self.tz)
            except ValueError:  # Feb 29 in a non-leap year
                continue
            micros = datetime_to_micros(local)
            if micros <= self.reference_us + _SKEW_US:
                value = micros
                break
        if len(cache) > 4096:
            cache.clear()
        if value is not None:
            cache[key] = value
        return value


def split_syslog(line: str, ctx: FrameContext) -> SyslogMessage | None:
    """Remove the syslog framing from ``line``; ``None`` when no framing matches."""
    if not line:
        return None
    fast = _fast_bsd(line, ctx)
    if fast is not None:
        return fast
    first = line[0]
    if first == "<":
        m = _RFC5424.match(line)
        if m is not None:
            return _from_5424(m)
        body = line[line.find(">") + 1 : line.find(">") + 2]
        first = body or first
    if first.isdigit():
        m = _RFC3339.match(line)
        if m is None:
            return None
        try:
            stamp = _parse_iso(m["ts"])
        except ValueError:
            return None
        return SyslogMessage(stamp, m["host"], m["prog"], _pid(m["pid"]), m["msg"])
    m = _BSD.match(line)
    if m is None:
        return None
    minute = ctx.bsd_minute(MONTHS[m["mon"]], int(m["day"]), int(m["hh"]), int(m["mm"]))
    if minute is None:
        return None
    if int(m["hh"]) > 23 or int(m["mm"]) > 59 or int(m["ss"]) > 60:
        return None
    frac = m["frac"]
    micros = minute + int(m["ss"]) * 1_000_000 + (int(frac.ljust(6, "0")) if frac else 0)
    return SyslogMessage(micros, m["host"], m["prog"], _pid(m["pid"]), m["msg"])


def _fast_bsd(line: str, ctx: FrameContext) -> SyslogMessage | None:
    """The common ``Mmm dd hh:mm:ss host prog[pid]: msg`` with string slicing, no regex.

    Most lines on a real machine have exactly this shape, and slicing is several times
    cheaper than the general expression. Anything unusual returns ``None`` and takes the
    regex path, which is the reference; a test checks that both agree.
    """
    if len(line) < 20 or line[15] != " " or line[12] != ":" or line[9] != ":":
        return None
    if line[3] != " " or line[6] != " ":
        return None
    cache = ctx.prefix_cache
    minute = cache.get(line[:12])
    if minute is None:
        mon = MONTHS.get(line[:3])
        day, hh, mm = line[4:6].lstrip(" "), line[7:9], line[10:12]
        if mon is None or not (day + hh + mm).isascii() or not (day + hh + mm).isdigit():
            return None
        if int(hh) > 23 or int(mm) > 59:
            return None
        minute = ctx.bsd_minute(mon, int(day), int(hh), int(mm))
        if minute is None:
            return None
        if len(cache) > 4096:
            cache.clear()
        cache[line[:12]] = minute
    ss = line[13:15]
    if not (ss.isascii() and ss.isdigit()) or ss > "60":
        return None
    host_end = line.find(" ", 16)
    if host_end < 17:
        return None
    host = line[16:host_end]
    # isprintable() is False for every whitespace character but the space (which cannot be
    # in host) and for control characters: a cheap, stricter stand-in for a regex \s search
    # (what it turns away, the regex path reads).
    if ":" in host or "[" in host or not host.isprintable():
        return None
    tag_end = line.find(": ", host_end + 1)
    if tag_end < 0:
        return None
    tag = line[host_end + 1 : tag_end]
    if not tag or len(tag) > 100 or ":" in tag or " " in tag or not tag.isprintable():
        return None
    pid: int | None = None
    if tag[-1] == "]":
        open_at = tag.rfind("[")
        # numerals.ascii_int's rule, inlined: this is the ingest's hottest function.
        digits = tag[open_at + 1 : -1]
        if open_at < 1 or not (digits.isascii() and digits.isdigit()) or len(digits) > 10:
            return None
        pid = int(digits)
        if pid > UINT32_MAX:
            return None
        tag = tag[:open_at]
    if "[" in tag or "]" in tag or ("(" in tag and not tag.endswith(")")):
        return None
    return SyslogMessage(minute + int(ss) * 1_000_000, host, tag, pid, line[tag_end + 2 :])


def _from_5424(m: re.Match[str]) -> SyslogMessage | None:
    ts = m["ts"]
    if ts == "-":
        return None
    try:
        stamp = _parse_iso(ts)
    except ValueError:
        return None
    host = None if m["host"] == "-" else m["host"]
    app = "" if m["app"] == "-" else m["app"]
    msg = m["msg"] or ""
    if msg.startswith("\ufeff"):  # RFC 5424 §6.4: a UTF-8 message may start with a BOM
        msg = msg[1:]
    procid = m["procid"]
    return SyslogMessage(stamp, host, app, _pid(procid), msg)


def _parse_iso(text: str) -> int:
    """ISO 8601 → µs, tolerating nanoseconds (truncated) and ``+0100`` offsets."""
    date, _, rest = text.replace(" ", "T", 1).partition("T")
    if "." in rest:
        clock, _, tail = rest.partition(".")
        digits = len(tail) - len(tail.lstrip("0123456789"))
        frac, zone = tail[:digits], tail[digits:]
        rest = f"{clock}.{frac[:6].ljust(6, '0')}{zone}"
    if rest.endswith("Z"):
        rest = rest[:-1] + "+00:00"
    elif len(rest) >= 5 and rest[-5] in "+-" and ":" not in rest[-5:]:
        rest = rest[:-2] + ":" + rest[-2:]
    dt = datetime.fromisoformat(f"{date}T{rest}")
    if dt.tzinfo is None:  # pragma: no cover - the regexes require a zone
        dt = dt.replace(tzinfo=UTC)
    if dt.utcoffset() is not None and abs(dt.utcoffset() or timedelta()) > timedelta(hours=18):
        raise ValueError("offset out of range")
    return datetime_to_micros(dt)


def _pid(text: str | None) -> int | None:
    return ascii_int(text, max_value=UINT32_MAX)
