"""The MariaDB server_audit parser, against the plugin's own regression test output."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stream_helpers import assert_lossless, feed_all, read_lines, stream_context

from keeptrail.event import Event, parse_time
from keeptrail.parsers import mariadb_audit

RESULT = "mariadb-server/mysql-test/suite/plugins/r/server_audit.result"


def run(lines: list[str]) -> list[Event]:
    events = feed_all(mariadb_audit.assembler(stream_context()), lines)
    assert_lossless(lines, events)
    return events


def _unmask(line: str) -> str:
    """The test masks the time, host and ids (``TIME,HOSTNAME,...,ID,ID,...,ID``); put real
    values back in their place: a fixed time, a host name, connection 7, query 3, and error
    1045 for the failed connection, 1146 for the failed queries."""
    fields = line.split(",")
    fields[0], fields[1] = "20240101 10:00:00", "dbhost"
    fields[4] = "7"
    if fields[5] == "ID":
        fields[5] = "3"
    if fields[-1] == "ID":
        fields[-1] = "1045" if fields[6] == "FAILED_CONNECT" else "1146"
    return ",".join(fields)


def _audit_lines() -> list[str]:
    return [_unmask(x) for x in read_lines(RESULT) if x.startswith("TIME,HOSTNAME,")]


def test_server_audit_result_counts() -> None:
    """All 138 audit lines of the plugin's test parse, with the operations it logged."""
    lines = _audit_lines()
    assert len(lines) == 138
    assert all(mariadb_audit.sniff(x) for x in lines)
    events = run(lines)
    ops = Counter(str(e.details["operation"]) for e in events)
    assert ops == {
        "QUERY": 78, "WRITE": 42, "READ": 5, "DISCONNECT": 3, "CONNECT": 2, "CREATE": 3,
        "DROP": 2, "FAILED_CONNECT": 1, "ALTER": 1, "RENAME": 1,
    }  # fmt: skip
    actions = Counter((e.action, e.outcome) for e in events)
    assert actions[("db.login", "failure")] == 1
    assert actions[("db.logout", "success")] == 3
    assert actions[("db.table_access", "success")] == 54
    assert (
        actions[("db.query", "failure")] == 3
    )  # t_doesnt_exist, syntax error, SET PASSWORD=<secret>


def test_field_by_field() -> None:
    """A query with escaped quotes, a table event, and the failed login read exactly."""
    events = {e.raw: e for e in run(_audit_lines())}
    q = next(e for raw, e in events.items() if "server_audit_incl_users=\\'odin" in raw)
    assert q.details["statement"] == "set global server_audit_incl_users='odin, root, dva, tri'"
    assert (q.action, q.actor_name, q.source_host, q.target_resource) == (
        "db.query",
        "root",
        "localhost",
        "test",
    )
    assert q.time == parse_time("2024-01-01T10:00:00Z")
    rename = next(e for e in events.values() if e.details["operation"] == "RENAME")
    assert (rename.action, rename.target_resource) == ("db.table_access", "test.t1|test.renamed_t1")
    failed = next(e for e in events.values() if e.details["operation"] == "FAILED_CONNECT")
    assert (failed.action, failed.reason, failed.actor_name) == (
        "db.login",
        "bad_password",
        "no_such_user",
    )
    ddl = [e for e in events.values() if e.action == "db.ddl"]
    assert {e.details["command_tag"] for e in ddl} >= {
        "CREATE TABLE",
        "DROP TABLE",
        "ALTER TABLE",
        "CREATE USER",
        "GRANT",
    }


def test_hostile_user_name_with_commas() -> None:
    """A failed login's user name full of commas and fields does not move host or operation."""
    line = (
        "20240101 10:00:00,db1,x,6.6.6.6,1,1,CONNECT,mysql,,0,10.0.0.8,12,0,FAILED_CONNECT,,,1045"
    )
    e = run([line])[0]
    assert (e.action, e.outcome, e.source_ip) == ("db.login", "failure", "10.0.0.8")
    assert e.actor_name == "x,6.6.6.6,1,1,CONNECT,mysql,,0"


@pytest.mark.parametrize(
    "line",
    [
        "Feb 11 13:15:39 host mysql-server_auditing: db1,root,localhost,1,1,QUERY,test,'select 1',0",  # noqa: E501
        '2024-01-01 00:00:00.000 UTC,"u","d",1,"h:1",s,1,"",x,1/1,0,LOG,00000,"m",,,,,,,,,""',
        '{"kind":"Event"}',
        "2016-06-07T19:07:02.558338Z    3 Connect\tphpmyadmin@localhost on  using Socket",
    ],
)
def test_sniff_rejects_other_formats(line: str) -> None:
    """Syslog, csvlog, JSON and general-log lines are not sniffed as server_audit."""
    assert not mariadb_audit.sniff(line)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(exclude_characters="\n"), max_size=100), max_size=8))
def test_arbitrary_text_never_raises_or_loses_lines(lines: list[str]) -> None:
    """Any text yields one event per line."""
    run(lines)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(exclude_characters="\n"), max_size=60))
def test_fuzzed_fields_never_raise(value: str) -> None:
    """Hostile text in the user and object fields still gives exactly one event."""
    run([f"20240101 10:00:00,db1,{value},10.0.0.1,1,2,QUERY,test,'{value}',0"])
