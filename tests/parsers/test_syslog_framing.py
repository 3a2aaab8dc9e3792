"""Syslog framings: BSD with year inference, RFC 3339, RFC 5424, and the fast path."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keeptrail.event import format_time, parse_time
from keeptrail.parsers import syslog
from keeptrail.parsers.syslog import FrameContext, split_syslog

DATA = Path(__file__).parent.parent / "data"


def ctx(reference: str = "2025-01-05T00:00:00Z") -> FrameContext:
    return FrameContext(reference_us=parse_time(reference))


def test_bsd_year_is_inferred_across_new_year() -> None:
    """A December line read in early January belongs to the previous year."""
    msg = split_syslog("Dec 31 23:59:59 host sshd[12]: x", ctx())
    assert msg is not None
    assert format_time(msg.time) == "2024-12-31T23:59:59.000000Z"
    jan = split_syslog("Jan  1 00:00:01 host sshd[12]: x", ctx())
    assert jan is not None
    assert format_time(jan.time) == "2025-01-01T00:00:01.000000Z"


def test_bsd_leap_day_takes_the_nearest_leap_year() -> None:
    """Feb 29 lands in the latest leap year not after the reference."""
    msg = split_syslog("Feb 29 10:00:00 h x: y", ctx())
    assert msg is not None
    assert format_time(msg.time).startswith("2024-02-29")


def test_bsd_fields_and_pid() -> None:
    """Host, program, pid and message are split at the right places."""
    msg = split_syslog("Nov  2 13:24:34 melancia su(pam_unix)[2298]: session opened", ctx())
    assert msg is not None
    assert (msg.host, msg.program, msg.pid, msg.message) == (
        "melancia",
        "su(pam_unix)",
        2298,
        "session opened",
    )


def test_rfc3339_with_nanoseconds_and_offset() -> None:
    """rsyslog's high-precision stamps are converted to UTC, nanoseconds truncated."""
    msg = split_syslog("2024-02-21T21:54:44.123456789+01:00 deb sudo: vagrant : TTY=x", ctx())
    assert msg is not None
    assert format_time(msg.time) == "2024-02-21T20:54:44.123456Z"
    assert (msg.host, msg.program, msg.pid) == ("deb", "sudo", None)


def test_rfc5424_with_structured_data_and_bom() -> None:
    """RFC 5424 lines keep app name, pid and message, without the BOM."""
    line = '<34>1 2003-10-11T22:14:15.003Z mymachine su 77 ID47 [a b="c\\]"] \ufeffmsg'
    msg = split_syslog(line, ctx())
    assert msg is not None
    assert (msg.host, msg.program, msg.pid, msg.message) == ("mymachine", "su", 77, "msg")
    assert format_time(msg.time) == "2003-10-11T22:14:15.003000Z"


def test_priority_prefix_on_bsd_lines() -> None:
    """A <PRI> in front of a BSD line, as received over the network, is accepted."""
    msg = split_syslog("<13>Feb  5 10:00:00 h sshd[1]: x", ctx())
    assert msg is not None
    assert msg.program == "sshd"


@pytest.mark.parametrize(
    "line",
    ["", "garbage", "Feb 30 10:00:00 h x: y", "Feb  5 25:00:00 h x: y", "<999>1 - - - - - -"],
)
def test_unframed_lines_return_none(line: str) -> None:
    """Lines without a valid framing are refused, so they become unparsed events."""
    assert split_syslog(line, ctx()) is None


def _slow(line: str, c: FrameContext) -> object:
    """The regex reference path, with the fast path switched off."""
    original = syslog._fast_bsd
    syslog._fast_bsd = lambda _line, _ctx: None  # type: ignore[assignment]
    try:
        return split_syslog(line, c)
    finally:
        syslog._fast_bsd = original


def test_fast_path_agrees_with_regex_on_real_corpora() -> None:
    """Every real line in tests/data frames identically with and without the fast path."""
    lines = []
    for path in DATA.rglob("*"):
        if path.is_file() and path.suffix in {".log", ".ini", ""}:
            for raw in path.read_text(errors="replace").splitlines():
                line = raw.split(" = ", 1)[1] if raw.startswith("log ") and " = " in raw else raw
                lines.append(line)
    assert len(lines) > 100
    for line in lines:
        assert split_syslog(line, ctx()) == _slow(line, ctx()), line


@given(
    st.sampled_from(["Jan", "Feb", "Dec", "Xyz"]),
    st.text(alphabet=" 0123456789:", min_size=11, max_size=13),
    st.text(min_size=0, max_size=40),
)
def test_fast_path_agrees_with_regex_on_generated_lines(mon: str, clock: str, rest: str) -> None:
    """On generated near-BSD lines, the fast path never disagrees with the reference."""
    line = f"{mon} {clock} {rest}"
    assert split_syslog(line, ctx()) == _slow(line, ctx())


@given(st.text(max_size=12), st.text(max_size=20), st.text(max_size=20))
def test_fast_path_agrees_with_regex_on_hostile_hosts_and_tags(
    host: str, tag: str, msg: str
) -> None:
    """Whatever host and tag text a sender puts in a well-stamped line, both paths agree."""
    line = f"Feb 21 21:54:44 {host} {tag}: {msg}"
    assert split_syslog(line, ctx()) == _slow(line, ctx())
