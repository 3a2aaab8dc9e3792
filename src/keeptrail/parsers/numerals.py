"""Numbers read from log text: ASCII digits only, bounded, never an exception.

Every numeral a parser converts (ports, uids, pids, HTTP status and sizes, counters, epoch
timestamps) is attacker-controlled text, and Python's own conversions are too generous for it:
``str.isdigit`` accepts ``²`` (which ``int`` then rejects with ``ValueError``), a regex ``\\d``
and ``int`` accept Arabic-Indic and other Unicode digits, ``int`` raises on a numeral longer
than 4,300 digits, ``float`` turns ``1e999`` into ``inf`` (and ``round(inf)`` raises), and a
detail integer beyond 64 bits cannot be written as canonical JSON at all.

So each conversion goes through :func:`ascii_int` or :func:`epoch_micros`: a value that is not
a plain ASCII numeral within the field's range is *absent* (``None``). The rule every parser
follows: the line is still parsed and its other fields kept; only the bad number is left out
(for a timestamp, the stream's reference time stands in, as for any unreadable timestamp).
"""

from __future__ import annotations

from typing import Final

from keeptrail.event import DetailValue

PORT_MAX: Final = 65_535
UINT32_MAX: Final = 4_294_967_295  # uid_t, gid_t, pid_t, counters and protocol codes
INT64_MAX: Final = 9_223_372_036_854_775_807  # the widest integer an event detail may hold
# 9999-12-31T23:59:59.999999Z: the last instant RFC 3339 (and the event's time text) can write.
TIME_US_MAX: Final = 253_402_300_799_999_999
_EPOCH_SECONDS_MAX: Final = TIME_US_MAX // 1_000_000
_MAX_DIGITS: Final = 20  # len(str(2**64 - 1)): no field of ours is wider


def ascii_int(text: str | None, *, max_value: int) -> int | None:
    """``text`` as an integer if it is an ASCII numeral from 0 to ``max_value``, else ``None``.

    Only ``0``-``9``: no sign, space, underscore or Unicode digit, at most 20 digits, so ``int``
    can never raise. A few C-level string tests: parsers call this on the hot path.
    """
    if text and text.isascii() and text.isdigit() and len(text) <= _MAX_DIGITS:
        value = int(text)
        if value <= max_value:
            return value
    return None


def ascii_signed_int(text: str | None, *, min_value: int, max_value: int) -> int | None:
    """:func:`ascii_int` for a field that may be negative: one leading ``-`` is allowed."""
    if text and text[0] == "-":
        value = ascii_int(text[1:], max_value=-min_value)
        return None if value is None else -value
    return ascii_int(text, max_value=max_value)


def epoch_micros(text: str | None) -> int | None:
    """Epoch seconds with an optional fraction (``1700000000.123``) as integer microseconds.

    Exact decimal arithmetic, no float (so no ``inf``, ``nan`` or ``1e999``); fractions past
    the microsecond are rounded half up. ``None`` unless both parts are ASCII digits and the
    instant is between 1970 and the end of year 9999.
    """
    if not text:
        return None
    seconds_text, dot, frac = text.partition(".")
    seconds = ascii_int(seconds_text, max_value=_EPOCH_SECONDS_MAX)
    if seconds is None:
        return None
    micros = 0
    if dot:
        if not frac or len(frac) > _MAX_DIGITS or not (frac.isascii() and frac.isdigit()):
            return None
        micros = int(frac[:6].ljust(6, "0")) + (frac[6:7] >= "5")
    value = seconds * 1_000_000 + micros
    return value if value <= TIME_US_MAX else None


def put_int(
    details: dict[str, DetailValue], key: str, text: str | None, *, max_value: int
) -> int | None:
    """Set ``details[key]`` to :func:`ascii_int` of ``text`` when it is readable; return it."""
    value = ascii_int(text, max_value=max_value)
    if value is not None:
        details[key] = value
    return value
