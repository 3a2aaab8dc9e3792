"""The MySQL/MariaDB general-log and error-log parser, against Percona Toolkit's samples."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stream_helpers import assert_lossless, feed_all, read_lines, stream_context

from keeptrail.event import Event, format_time
from keeptrail.parsers import mysql

GENLOGS = "percona-toolkit/t/lib/samples/genlogs/"


def run(lines: list[str]) -> list[Event]:
    events = feed_all(mysql.assembler(stream_context()), lines)
    assert_lossless(lines, events)
    return events


# Percona Toolkit's expected events (t/lib/GeneralLogParser.t), transcribed:
# (ts, Thread_id, cmd or admin command, arg for queries, user, host, db).
# Deliberate differences: Percona reports ``db`` only on the Connect / Init DB line and the
# queries after it, we keep the thread's database on every later line (Quit included), and we
# also carry the connecting user on the thread's later lines (Percona does not). Its
# ``pos_in_log`` counts differently (after the previous entry's trailing newline), so offsets
# are checked separately against the file. One deliberate disagreement: genlog004's last line,
# a Connect without a time column right after a query, is read as that query's continuation
# (a client can write exactly such a line inside its statement; see the mysql module).
PERCONA: dict[str, list[tuple[str | None, str, str, str | None, str | None, str | None, str | None]]] = {  # noqa: E501
    "genlog001.txt": [
        ("051007 21:55:24", "42", "Connect", None, "root", "localhost", "db1"),
        (None, "42", "Query", "SELECT foo \n                         FROM tbl\n                         WHERE col=12345\n                         ORDER BY col", None, None, "db1"),  # noqa: E501
        (None, "42", "Quit", None, None, None, None),
        ("061226 15:42:36", "11", "Connect", None, "root", "localhost", None),
        (None, "11", "Init DB", None, None, None, "my_webstats"),
        (None, "11", "Query", "SELECT DISTINCT col FROM tbl WHERE foo=20061219", None, None, "my_webstats"),  # noqa: E501
        ("061226 16:44:48", "11", "Quit", None, None, None, None),
    ],
    "genlog004.txt": [
        (None, "12345", "Access denied", None, "nobody", "localhost", None),
        (None, "12345", "Connect", None, "nobody", "localhost", None),
        (None, "31519", "Query", "BEGIN\n\t\t98765 Connect\tpayments_r@1.2.3.4 on sar", None, None, None),  # noqa: E501
    ],
    "pt-1573-general-log-system.log": [
        ("2018-09-07T18:45:40.098124+08:00", "257426", "Connect", None, "mysqlha_common", "127.0.0.1", None),  # noqa: E501
        ("2018-09-07T18:45:40.098511+08:00", "257426", "Query", "set autocommit=0", None, None, None),  # noqa: E501
        ("2018-09-07T18:45:40.098613+08:00", "257426", "Query", "set autocommit=1", None, None, None),  # noqa: E501
        ("2018-09-07T18:45:40.098769+08:00", "257426", "Query", "show global status like 'Threads_connected'", None, None, None),  # noqa: E501
        ("2018-09-07T18:45:40.101009+08:00", "257426", "Quit", None, None, None, None),
    ],
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(PERCONA))
def test_matches_percona_general_log_parser(name: str) -> None:
    """Thread, command, query text, user, host and database agree with Percona's parser."""
    events = [e for e in run(read_lines(GENLOGS + name)) if e.action != "db.server_start"]
    expected = PERCONA[name]
    assert len(events) == len(expected)
    for e, (ts, thread, cmd, arg, user, host, db) in zip(events, expected, strict=True):
        assert e.details["thread_id"] == thread
        if cmd == "Access denied":
            assert (e.action, e.outcome, e.reason) == ("db.login", "failure", "denied")
        else:
            assert e.details["command"] == cmd
        if arg is not None:
            assert e.details["statement"] == arg
        if user is not None:
            assert e.actor_name == user
        if host is not None:
            assert (e.source_ip or e.source_host) == host
        if db is not None:
            assert e.target_resource == db
        if ts is not None and "T" in ts:
            assert (
                format_time(e.time)[:26]
                == {
                    "2018-09-07T18:45:40.098124+08:00": "2018-09-07T10:45:40.098124",
                    "2018-09-07T18:45:40.098511+08:00": "2018-09-07T10:45:40.098511",
                    "2018-09-07T18:45:40.098613+08:00": "2018-09-07T10:45:40.098613",
                    "2018-09-07T18:45:40.098769+08:00": "2018-09-07T10:45:40.098769",
                    "2018-09-07T18:45:40.101009+08:00": "2018-09-07T10:45:40.101009",
                }[ts]
            )


def test_thread_state_ties_queries_to_the_login() -> None:
    """Queries of a thread carry its Connect user, host and database until Quit."""
    events = run(read_lines(GENLOGS + "genlog001.txt"))
    assert [(e.action, e.actor_name, e.target_resource) for e in events[:3]] == [
        ("db.login", "root", "db1"),
        ("db.query", "root", "db1"),
        ("db.logout", "root", "db1"),
    ]
    assert events[5].target_resource == "my_webstats"
    assert events[5].actor_name == "root"


@pytest.mark.parametrize(
    ("name", "lines", "events"),
    [
        ("genlog001.txt", 10, 7),
        ("genlog002.txt", 16, 2),
        ("genlog003.txt", 10, 7),
        ("genlog004.txt", 4, 3),
        ("genlog005.txt", 16, 14),
        ("pt-1573-general-log-system.log", 8, 6),
    ],
)
def test_every_sample_is_sniffed_and_assembled(name: str, lines: int, events: int) -> None:
    """Each sample is recognised from its first line and its multi-line queries stay whole."""
    text = read_lines(GENLOGS + name)
    assert mysql.sniff(text[0])
    out = run(text)
    assert (len(text), len(out)) == (lines, events)
    assert all(e.action != "unparsed" for e in out)


def test_ddl_and_error_log_access_denied() -> None:
    """DDL is ``db.ddl``; error-log access denials of MySQL 8 and MariaDB are failed logins."""
    lines = [
        "2024-01-01T10:00:00.000001Z\t   7 Connect\tadmin@10.0.0.3 on shop using TCP/IP",
        "2024-01-01T10:00:01.000001Z\t   7 Query\tDROP TABLE orders",
        "2024-01-01T10:00:02.000000Z 9 [Note] [MY-010926] [Server] Access denied for user 'root'@'203.0.113.5' (using password: YES)",  # noqa: E501
        "2024-01-01 10:00:03 12 [Warning] Access denied for user 'x'@'1.2.3.4' (using password: NO)'@'localhost' (using password: YES)",  # noqa: E501
    ]
    e = run(lines)
    assert (e[1].action, e[1].actor_name, e[1].details["command_tag"]) == (
        "db.ddl",
        "admin",
        "DROP TABLE",
    )
    assert (e[2].action, e[2].reason, e[2].actor_name, e[2].source_ip) == (
        "db.login",
        "bad_password",
        "root",
        "203.0.113.5",
    )
    # a hostile user name cannot move the host: the last quoted host is the server's
    assert (e[3].reason, e[3].source_host, e[3].source_ip) == ("bad_password", "localhost", None)


@pytest.mark.parametrize(
    "line",
    [
        "Feb 11 13:15:39 host mysqld[1]: 2024-01-01T10:00:00Z 7 [Note] x",
        "2024-01-01 00:00:00.000 UTC [1] LOG:  statement: select 1",
        '10.0.0.5 - - [1/Apr/2014:00:00:01 -0500] "GET / HTTP/1.1" 403 181 "-" "the beast"',
        '{"kind":"Event","apiVersion":"audit.k8s.io/v1"}',
        "20140402 10:22:11,myhost,root,localhost,2,5,QUERY,test,'select 1',0",
    ],
)
def test_sniff_rejects_other_formats(line: str) -> None:
    """Syslog, PostgreSQL, web, JSON and MariaDB audit lines are not sniffed as MySQL logs."""
    assert not mysql.sniff(line)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.text(alphabet=st.characters(exclude_characters="\n"), max_size=100), max_size=10)
)
def test_arbitrary_text_never_raises_or_loses_lines(lines: list[str]) -> None:
    """Any text yields events whose raw lines are exactly the lines fed."""
    run(lines)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "/usr/sbin/mysqld, Version: 8.0 (x). started with:",
                "Tcp port: 3306  Unix socket: /tmp/s",
                "Time                 Id Command    Argument",
                "2024-01-01T10:00:00Z\t 3 Connect\tu@h on d using TCP/IP",
                "\t\t 3 Query\tSELECT 1",
                "   FROM t",
                "\t\t 3 Quit\t",
                "251231 1:02:03\t 4 Query\tx",
            ]
        ),
        max_size=15,
    )
)
def test_structured_mix_never_loses_lines(lines: list[str]) -> None:
    """Any order of headers, entries and continuation lines loses nothing."""
    run(lines)


def test_access_denied_user_with_quotes_is_split_from_the_right() -> None:
    """A user name holding quotes and '@' never moves the host (split from the right)."""
    from keeptrail.parsers.mysql import _denied  # noqa: PLC0415

    assert _denied("Access denied for user 'a'@'6.6.6.6'@'10.0.0.1' (using password: NO)") == (
        "a'@'6.6.6.6",
        "10.0.0.1",
        "NO",
    )
    assert _denied("Access denied for user 'x'@'h' trailing") is None


def test_connect_line_inside_a_held_query_cannot_rename_the_thread() -> None:
    """A client's statement holding ``\\t\\t7 Connect\\troot@6.6.6.6 on prod`` stays statement text.

    Pre-5.7 logs write the time only when it changes, so that line looks like a real entry; the
    thread's user, host and database must still be the ones its real Connect named.
    """
    forged = "\t\t7 Connect\troot@6.6.6.6 on prod"
    lines = [
        "240101 10:00:00\t    7 Connect\talice@10.0.0.5 on shop",
        "\t\t    7 Query\tSELECT 'x",
        forged,
        "'",
        "\t\t    7 Query\tSELECT 2",
    ]
    events = run(lines)
    assert [e.action for e in events] == ["db.login", "db.query", "db.query"]
    assert events[1].details["statement"] == f"SELECT 'x\n{forged}\n'"
    for e in events[1:]:
        assert (e.actor_name, e.source_ip, e.target_resource) == ("alice", "10.0.0.5", "shop")


def test_in_a_timestamped_log_no_line_without_a_time_starts_an_entry() -> None:
    """MySQL 5.7+ stamps every entry: a stamp-less Quit or Connect in a query is its text."""
    lines = [
        "2024-01-01T10:00:00.000001Z\t    7 Connect\talice@10.0.0.5 on shop",
        "2024-01-01T10:00:01.000001Z\t    7 Query\tSELECT 'x",
        "\t\t7 Quit\t",
        "\t\t7 Connect\troot@6.6.6.6 on prod",
        "'",
        "2024-01-01T10:00:02.000001Z\t    7 Query\tSELECT 2",
    ]
    events = run(lines)
    assert [e.action for e in events] == ["db.login", "db.query", "db.query"]
    assert events[1].details["statement"].count("\n") == 3
    assert (events[2].actor_name, events[2].source_ip) == ("alice", "10.0.0.5")


def test_a_connect_with_its_own_time_after_a_query_is_still_a_login() -> None:
    """Only stamp-less Connect lines are suspect: a new second's Connect is a real entry."""
    lines = [
        "240101 10:00:00\t    7 Query\tSELECT 1",
        "240101 10:00:01\t    8 Connect\tbob@10.0.0.6 on shop",
        "\t\t    8 Query\tSELECT 2",
    ]
    events = run(lines)
    assert [(e.action, e.actor_name) for e in events] == [
        ("db.query", None),
        ("db.login", "bob"),
        ("db.query", "bob"),
    ]


def test_thread_memory_is_bounded_least_recently_used_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Beyond MAX_THREADS the least recently active thread is forgotten, not the busy one."""
    monkeypatch.setattr(mysql, "MAX_THREADS", 3)
    a = mysql.assembler(stream_context())
    lines = [
        "240101 10:00:00\t    1 Connect\tu1@10.0.0.1 on d",
        "\t\t    2 Connect\tu2@10.0.0.2 on d",
        "\t\t    3 Connect\tu3@10.0.0.3 on d",
        "240101 10:00:01\t    1 Query\tSELECT 1",  # thread 1 is busy again: 2 is now the oldest
        "240101 10:00:02\t    4 Connect\tu4@10.0.0.4 on d",
        "240101 10:00:03\t    1 Query\tSELECT 1",
        "240101 10:00:04\t    2 Query\tSELECT 1",
    ]
    events = feed_all(a, lines)
    assert [e.actor_name for e in events[-2:]] == ["u1", None]
    assert len(a._threads) <= 3
    assert mysql.MAX_THREADS == 3


def test_a_forged_iso_entry_cannot_switch_an_old_log_to_stamped_mode() -> None:
    """The log style is decided by the first entry; a client's ISO-stamped line cannot make
    every later stamp-less entry of a pre-5.7 log into statement text."""
    lines = [
        "240101 10:00:00\t    7 Connect\talice@10.0.0.5 on shop",
        "\t\t    7 Query\tSELECT 'x",
        "2024-01-01T00:00:00.000001Z\t    8 Query\ty'",
        "\t\t    7 Query\tSELECT 2",
    ]
    events = run(lines)
    assert [e.action for e in events] == ["db.login", "db.query", "db.query", "db.query"]
    assert (events[3].details["statement"], events[3].actor_name) == ("SELECT 2", "alice")
