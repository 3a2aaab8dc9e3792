"""Numerals in log text: the shared conversions, and odd numbers in every format's numeric fields.

Each format gets lines that are valid except for one number (ports, uids, pids, HTTP status and
size, counters, epoch timestamps, audit serials). Whatever the number — Unicode digits (``²``
passes ``str.isdigit`` but not ``int``), 5,000 digits (past ``int``'s limit), ``1e999``,
``inf``, a sign, a value past 64 bits (not writable as canonical JSON) — the parser must not
raise, the event must be storable (canonical bytes, a time that round-trips), and the number is
either left out or is exactly the ASCII numeral's value within the field's range.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest
from auth_golden import REFERENCE_US, context
from hypothesis import given, settings
from hypothesis import strategies as st
from stream_helpers import stream_context

from keeptrail.event import Event, canonical_bytes, format_time, parse_time
from keeptrail.parsers import auditd, journald, postgres, web_access
from keeptrail.parsers.detect import parse_line
from keeptrail.parsers.numerals import (
    INT64_MAX,
    PORT_MAX,
    TIME_US_MAX,
    UINT32_MAX,
    ascii_int,
    ascii_signed_int,
    epoch_micros,
)

# --- the conversions -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0", 0), ("22", 22), ("065535", 65_535), ("65535", 65_535), ("65536", None),
     ("²", None), ("2²", None), ("٣٤", None), ("１２", None), ("+22", None), ("-1", None),
     (" 22", None), ("22 ", None), ("1_000", None), ("0x10", None), ("inf", None),
     ("1e3", None), ("", None), (None, None), ("9" * 21, None), ("9" * 5000, None)],
)  # fmt: skip
def test_ascii_int_accepts_only_plain_ascii_numerals_in_range(
    text: str | None, expected: int | None
) -> None:
    """Only 0-9, no sign or space, bounded length, and the field's maximum."""
    assert ascii_int(text, max_value=PORT_MAX) == expected


def test_ascii_signed_int() -> None:
    """A signed field admits one leading minus sign, nothing else."""
    assert ascii_signed_int("-1", min_value=-5, max_value=5) == -1
    assert ascii_signed_int("5", min_value=-5, max_value=5) == 5
    for text in ("-6", "6", "--1", "-", "-²", "+1", "- 1", ""):
        assert ascii_signed_int(text, min_value=-5, max_value=5) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1700000000", 1_700_000_000_000_000), ("1700000000.123", 1_700_000_000_123_000),
     ("1609718706.011", 1_609_718_706_011_000), ("1.0000005", 1_000_001), ("1.0000004", 1_000_000),
     ("253402300799.999999", TIME_US_MAX), ("253402300800", None), ("1e999", None),
     ("inf", None), ("nan", None), ("-1", None), ("1.²", None), ("²", None), (".5", None),
     ("5.", None), ("9" * 400, None), ("1." + "9" * 5000, None), ("", None), (None, None)],
)  # fmt: skip
def test_epoch_micros_is_exact_and_bounded(text: str | None, expected: int | None) -> None:
    """Exact decimal microseconds, no float: no inf, nan, overflow, nor a year past 9999."""
    assert epoch_micros(text) == expected


@given(st.text(max_size=40))
@settings(max_examples=500)
def test_conversions_never_raise(text: str) -> None:
    """Any text: a value in range or None, never an exception."""
    value = ascii_signed_int(text, min_value=-INT64_MAX, max_value=INT64_MAX)
    assert value is None or -INT64_MAX <= value <= INT64_MAX
    unsigned = ascii_int(text, max_value=INT64_MAX)
    assert unsigned is None or (text.isascii() and text.isdigit() and unsigned == int(text))
    micros = epoch_micros(text)
    assert micros is None or 0 <= micros <= TIME_US_MAX


@given(st.integers(min_value=0, max_value=253_402_300_799), st.integers(0, 999_999))
def test_epoch_micros_agrees_with_integer_arithmetic(seconds: int, micros: int) -> None:
    """Every six-digit epoch reads back exactly."""
    assert epoch_micros(f"{seconds}.{micros:06d}") == seconds * 1_000_000 + micros


# --- odd numerals in every format's numeric fields ---------------------------------------------

ODD = [
    "²", "٣٤", "１２", "2²", "+22", "-1", "-0", " 22", "1_000", "0x16", "1e999", "1e3", "inf",
    "-inf", "nan", "NaN", "1.5", "9" * 21, "9" * 5000, "18446744073709551616", "65536",
    "99999999999", "4294967296", "253402300800", "1" + "0" * 19,
]  # fmt: skip
_NUMERALS = st.one_of(
    st.sampled_from(ODD),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.text(alphabet="0123456789²³¹٠١٢٣٤٥६७੮௯๙0１.-+e", min_size=1, max_size=30),
)

_SYSLOG = "Feb 21 21:54:44 host1 "


def _syslog(template: str) -> Callable[[str], list[Event]]:
    def run(n: str) -> list[Event]:
        return [parse_line(_SYSLOG + template.replace("{n}", n), context())]

    return run


def _stream(assembler: Callable[[], Any], template: str) -> Callable[[str], list[Event]]:
    def run(n: str) -> list[Event]:
        a = assembler()
        line = template.replace("{n}", n)
        return [*a.feed(line, 0), *a.flush()]

    return run


def _json(assembler: Callable[[], Any], doc: dict[str, str]) -> Callable[[str], list[Event]]:
    def run(n: str) -> list[Event]:
        a = assembler()
        line = orjson.dumps({k: v.replace("{n}", n) for k, v in doc.items()}).decode()
        return [*a.feed(line, 0), *a.flush()]

    return run


def _ctx() -> Any:
    return stream_context("h")


# (name, runner, where the number lands, its maximum)
FIELDS: list[tuple[str, Callable[[str], list[Event]], Callable[[Event], Any], int]] = [
    ("sshd port", _syslog("sshd[1]: Failed password for root from 1.2.3.4 port {n} ssh2"),
     lambda e: e.source_port, PORT_MAX),
    ("sshd pid", _syslog("sshd[{n}]: Failed password for root from 1.2.3.4 port 22 ssh2"),
     lambda e: None, 0),
    ("sshd disconnect code", _syslog("sshd[1]: Received disconnect from 1.2.3.4 port 22:{n}: bye"),
     lambda e: e.details.get("disconnect_code"), UINT32_MAX),
    ("sshd PAM attempts", _syslog(
        "sshd[1]: PAM {n} more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= "
        "rhost=1.2.3.4  user=root"), lambda e: e.details.get("attempts"), UINT32_MAX),
    ("pam uid", _syslog(
        "sshd[1]: pam_unix(sshd:auth): authentication failure; logname= uid={n} euid={n} "
        "tty=ssh ruser= rhost=1.2.3.4  user=root"), lambda e: e.details.get("uid"), UINT32_MAX),
    ("pam su uid", _syslog(
        "su[1]: pam_unix(su:auth): authentication failure; logname=bob uid={n} euid=0 "
        "tty=pts/0 ruser=bob rhost=  user=root"), lambda e: e.actor_uid, UINT32_MAX),
    ("pam session uid", _syslog(
        "sshd[1]: pam_unix(sshd:session): session opened for user bob(uid={n}) by (uid={n})"),
     lambda e: e.actor_uid, UINT32_MAX),
    ("pam tally", _syslog("sshd[1]: pam_tally2(sshd:auth): user bob ({n}) tally {n}, deny 3"),
     lambda e: e.details.get("tally"), UINT32_MAX),
    ("pam more", _syslog(
        "sshd[1]: pam_unix(sshd:auth): {n} more authentication failures; logname= uid=0 euid=0 "
        "tty=ssh ruser= rhost=1.2.3.4  user=root"), lambda e: None, 0),
    ("shadow uid", _syslog(
        "useradd[1]: new user: name=bob, UID={n}, GID={n}, home=/home/bob, shell=/bin/sh"),
     lambda e: e.details.get("uid"), UINT32_MAX),
    ("shadow gid", _syslog("groupadd[1]: new group: name=g, GID={n}"),
     lambda e: e.details.get("gid"), UINT32_MAX),
    ("sudo attempts", _syslog(
        "sudo:      bob : {n} incorrect password attempts ; TTY=pts/0 ; PWD=/ ; USER=root ; "
        "COMMAND=/bin/ls"), lambda e: e.details.get("attempts"), UINT32_MAX),
    ("rfc5424 procid", lambda n: [parse_line(
        f"<13>1 2024-01-01T00:00:00Z host sshd {n} - - Failed password for root from 1.2.3.4 "
        "port 22 ssh2", context())], lambda e: None, 0),
    ("postgres via syslog port", _syslog(
        "postgres[1]: [1-1] 2024-01-01 00:00:00 UTC [1] user=u,db=d LOG:  connection received: "
        "host=1.2.3.4 port={n}"), lambda e: e.source_port, PORT_MAX),
    ("journald", _json(lambda: journald.assembler(_ctx()), {
        "__REALTIME_TIMESTAMP": "{n}", "_PID": "{n}", "SYSLOG_PID": "{n}",
        "SYSLOG_IDENTIFIER": "sshd", "_HOSTNAME": "h",
        "MESSAGE": "Failed password for root from 1.2.3.4 port {n} ssh2"}),
     lambda e: e.source_port, PORT_MAX),
    ("web clf", _stream(lambda: web_access.assembler(_ctx()),
        '1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" {n} {n}'),
     lambda e: e.details.get("bytes"), INT64_MAX),
    ("web json status", _json(lambda: web_access.assembler(_ctx()), {
        "remote_addr": "1.2.3.4", "request": "GET / HTTP/1.1", "status": "{n}",
        "body_bytes_sent": "7", "msec": "1700000000.123"}),
     lambda e: e.details.get("status"), 999),
    ("web json bytes", _json(lambda: web_access.assembler(_ctx()), {
        "remote_addr": "1.2.3.4", "request": "GET / HTTP/1.1", "status": "200",
        "body_bytes_sent": "{n}", "msec": "{n}"}),
     lambda e: e.details.get("bytes"), INT64_MAX),
    ("postgres jsonlog", _json(lambda: postgres.assembler(_ctx()), {
        "timestamp": "{n}", "error_severity": "LOG", "remote_host": "1.2.3.4",
        "remote_port": "{n}", "message": "connection received: host=1.2.3.4 port={n}"}),
     lambda e: e.source_port, PORT_MAX),
    ("postgres stderr port", _stream(
        lambda: postgres.assembler(_ctx(), postgres.PostgresConfig(prefix="%n [%p] %r ")),
        "1700000000.123 [{n}] 1.2.3.4({n}) LOG:  connection received: host=1.2.3.4 port={n}"),
     lambda e: e.source_port, PORT_MAX),
    ("postgres stderr %n", _stream(
        lambda: postgres.assembler(_ctx(), postgres.PostgresConfig(prefix="%n [%p] %r ")),
        "{n} [1] 1.2.3.4(5432) LOG:  connection received: host=1.2.3.4 port=5432"),
     lambda e: None, 0),
    ("postgres csvlog", _stream(lambda: postgres.assembler(_ctx()),
        '2024-01-01 00:00:00.000 UTC,"u","d",1,"1.2.3.4:{n}",5f,1,"authentication",'
        '2024-01-01 00:00:00 UTC,1/1,0,LOG,00000,"connection authorized: user=u database=d",,,,'
        ',,,,,""'), lambda e: e.source_port, PORT_MAX),
    ("auditd header", _stream(lambda: auditd.assembler(_ctx()),
        "type=USER_LOGIN msg=audit({n}.000:{n}): pid={n} uid={n} auid={n} ses=1 "
        "msg='op=login acct=\"root\" exe=\"/usr/sbin/sshd\" hostname=? addr=1.2.3.4 "
        "terminal=ssh res=failed'"), lambda e: e.details.get("serial"), UINT32_MAX),
    ("auditd argc", _stream(lambda: auditd.assembler(_ctx()),
        'type=EXECVE msg=audit(1700000000.000:5): argc={n} a0="ls" a1="-l"'),
     lambda e: None, 0),
]  # fmt: skip


PLAIN = {"journald": "1700000000000000", "postgres stderr %n": "1700000000.123"}
SIGNED = frozenset({"shadow uid", "shadow gid"})  # the wording admits "UID=-1"


def _check(
    name: str, events: list[Event], where: Callable[[Event], Any], high: int, n: str
) -> None:
    assert events
    for event in events:
        canonical_bytes(event)  # storable: every integer fits 64 bits
        assert 0 <= event.time <= TIME_US_MAX
        assert parse_time(format_time(event.time)) == event.time
        value = where(event)
        if value is not None:
            digits = n.strip(" ")  # where the wording has a space, the regex takes it
            digits = digits[1:] if name in SIGNED and digits[:1] == "-" else digits
            assert digits.isascii(), (n, value)
            assert digits.isdigit(), (n, value)
            assert int(n) == value <= high, (n, value)


@pytest.mark.parametrize(("name", "run", "where", "high"), FIELDS, ids=[f[0] for f in FIELDS])
@pytest.mark.parametrize("n", ODD, ids=range(len(ODD)))
def test_odd_numerals_never_raise(
    name: str, run: Callable[[str], list[Event]], where: Callable[[Event], Any], high: int, n: str
) -> None:
    """Each odd numeral in each numeric field: no exception, a storable event."""
    _check(name, run(n), where, high, n)


@pytest.mark.parametrize(("name", "run", "where", "high"), FIELDS, ids=[f[0] for f in FIELDS])
@given(n=_NUMERALS)
@settings(max_examples=60, deadline=None)
def test_generated_numerals_never_raise(
    name: str, run: Callable[[str], list[Event]], where: Callable[[Event], Any], high: int, n: str
) -> None:
    """Generated numerals (huge, signed, mixed scripts) in each numeric field."""
    _check(name, run(n), where, high, n)


@pytest.mark.parametrize(("name", "run", "where", "high"), FIELDS, ids=[f[0] for f in FIELDS])
def test_plain_numerals_are_kept(
    name: str, run: Callable[[str], list[Event]], where: Callable[[Event], Any], high: int
) -> None:
    """The same lines with an ordinary number are parsed, not made unparsed."""
    n = PLAIN.get(name, "443")
    events = run(n)
    assert all(e.category != "unparsed" for e in events), [e.reason for e in events]


def test_port_above_65535_is_absent_and_the_line_still_parsed() -> None:
    """A port past 65,535 is left out; the login failure keeps its user and address."""
    event = parse_line(
        _SYSLOG + "sshd[1]: Failed password for root from 1.2.3.4 port 65536 ssh2", context()
    )
    assert (event.action, event.actor_name, event.source_ip, event.source_port) == (
        "ssh.login",
        "root",
        "1.2.3.4",
        None,
    )


def test_unicode_uid_is_absent_not_an_error() -> None:
    """``uid=²`` passes ``str.isdigit``; it used to reach ``int`` and cost the line."""
    event = parse_line(
        _SYSLOG + "su[1]: pam_unix(su:auth): authentication failure; logname=bob uid=² euid=0 "
        "tty=pts/0 ruser=bob rhost=  user=root",
        context(),
    )
    assert (event.action, event.actor_name, event.actor_uid) == ("pam.auth", "bob", None)


def test_journald_unreadable_timestamp_falls_back_to_reference() -> None:
    """A journal timestamp that is not a plain numeral in range means the reference time."""
    a = journald.assembler(stream_context())
    line = orjson.dumps(
        {"__REALTIME_TIMESTAMP": "9" * 19, "SYSLOG_IDENTIFIER": "x", "MESSAGE": "m"}
    ).decode()
    assert a.feed(line, 0)[0].time == REFERENCE_US


def test_syslog_time_and_pid_in_other_digits_are_not_framing() -> None:
    """``\\d`` matched Arabic-Indic digits and ``int`` read them: such a stamp is no syslog."""
    for line in (
        "Feb ٢١ 21:54:44 host1 sshd[1]: Failed password for root from 1.2.3.4 port 22 ssh2",
        "2024-01-01T00:00:00Z host1 sshd[١]: Failed password for root from 1.2.3.4 port 22 ssh2",
        "<13>1 2024-01-0١T00:00:00Z host1 sshd 1 - - Failed password for root from 1.2.3.4",
    ):
        event = parse_line(line, context())
        assert (event.category, event.reason) == ("unparsed", "no_syslog_framing"), line
