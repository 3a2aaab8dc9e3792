"""The PostgreSQL parser: stderr prefixes, csvlog, jsonlog, syslog, pgaudit, and the corpora."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from auth_golden import DATA, context, key_fields
from hypothesis import given, settings
from hypothesis import strategies as st
from stream_helpers import assert_lossless, feed_all, read_lines, stream_context

from keeptrail.event import Event, parse_time
from keeptrail.parsers import postgres
from keeptrail.parsers.postgres_prefix import Clock, compile_prefix
from keeptrail.parsers.syslog import split_syslog

BEATS = "beats/filebeat/module/postgresql/log/test/postgresql-11-connection-disconnection.csv.log"
FIXTURES = "pgbadger/t/fixtures/"


def run(lines: list[str], prefix: str | None = None) -> list[Event]:
    config = postgres.PostgresConfig(prefix) if prefix else None
    events = feed_all(postgres.assembler(stream_context(), config), lines)
    assert_lossless(lines, events)
    return events


def one(line: str, prefix: str | None = None) -> Event:
    events = run([line], prefix)
    assert len(events) == 1
    return events[0]


# --- the Filebeat csvlog sample and its expected output ------------------------------------


def test_beats_csvlog_matches_filebeat_expected() -> None:
    """Each csvlog record of the Filebeat sample agrees with Filebeat's expected event.

    Compared: time, offset, level, user, database, client address and port, session id, and
    the message (Filebeat puts a logged statement's SQL in ``message``; we keep it in
    ``details.statement`` and the message's prefix in the action). Filebeat leaves
    ``user.name`` out of some statement records; where it is present it must match.
    """
    expected = json.loads((DATA / (BEATS + "-expected.json")).read_text())
    events = run(read_lines(BEATS))
    assert len(events) == len(expected) == 20
    for e, x in zip(events, expected, strict=True):
        assert e.time == parse_time(x["@timestamp"])
        assert e.collector_offset == x["log.offset"]
        assert e.details["severity"] == x["log.level"]
        assert e.actor_session == x["postgresql.log.session_id"]
        assert e.details["pid"] == x["process.pid"]
        assert e.source_ip == x.get("postgresql.log.client_addr")
        if "postgresql.log.client_port" in x:
            assert e.source_port == x["postgresql.log.client_port"]
        if "user.name" in x:
            assert e.actor_name == x["user.name"]
        if "postgresql.log.database" in x:
            assert e.target_resource == x["postgresql.log.database"]
        if e.action in {"db.query", "db.ddl"}:
            assert e.details["statement"] == x["message"]
        elif e.action == "db.message":
            assert e.details["message"] == x["message"]
    actions = Counter((e.action, e.outcome, e.reason) for e in events)
    assert actions == {
        ("db.message", "unknown", None): 2,
        ("db.connection", "unknown", None): 5,
        ("db.login", "success", None): 1,
        ("db.query", "success", None): 4,
        ("db.ddl", "success", None): 3,
        ("db.logout", "success", None): 1,
        ("db.login", "failure", "invalid_user"): 4,  # DETAIL: Role "azlev" does not exist.
    }


# --- pgbadger's fixtures: every layout, pinned counts --------------------------------------

PGBADGER = {
    # file: (lines, events, {action: count} of interest, unparsed)
    "begin_end.log": (24, 24, {"db.connection": 8, "db.login": 8, "db.logout": 8}, 0),
    "light.postgres.log.bz2": (630, 630, {"db.query": 629, "db.message": 1}, 0),
    "multiline_param.log": (16, 8, {"db.query": 5, "db.prepare": 3}, 0),
    "anonymize.log": (8, 8, {"db.query": 5, "db.prepare": 3}, 0),
    "pg-timezones.log": (2, 2, {"db.query": 2}, 0),
    "pg_rawcsv.log": (14, 9, {"db.message": 7, "db.query": 2}, 0),
    "postgresql_param_range.log": (6, 3, {"db.query": 3}, 0),
    "csv_statement_without_duration.log": (2, 2, {"db.query": 2}, 0),
    "pg_vacuums.json.gz": (3544, 3544, {"db.message": 3544}, 0),
    # CloudNativePG interleaves its operator's own JSON messages: not server records.
    "cnpg.log.gz": (2022, 2022, {"db.login": 386, "db.logout": 385, "db.auth_step": 386}, 47),
    # Cloud SQL ships each continuation line of a message as its own entry.
    "cloudsql.log.gz": (1343, 1343, {"db.login": 398, "db.continuation": 75}, 0),
}


@pytest.mark.parametrize("name", sorted(PGBADGER))
def test_pgbadger_fixture(name: str) -> None:
    """Every pgbadger fixture is sniffed, parsed without loss, and gives the pinned counts."""
    lines = read_lines(FIXTURES + name)
    n_lines, n_events, wanted, n_unparsed = PGBADGER[name]
    assert postgres.sniff(lines[0])
    events = run(lines)
    assert (len(lines), len(events)) == (n_lines, n_events)
    actions = Counter(e.action for e in events)
    for action, count in wanted.items():
        assert actions[action] == count, action
    assert actions["unparsed"] == n_unparsed
    for e in events:
        assert e.time != stream_context().reference_us or e.action == "unparsed"


def test_multiline_statement_and_detail_stay_in_one_record() -> None:
    """Continuation lines extend the statement and the DETAIL line joins its message."""
    events = run(read_lines(FIXTURES + "multiline_param.log"))
    bind = events[4]
    assert bind.details["phase"] == "bind"
    assert bind.details["detail"] == "parameters: $1 = '1234', $2 = 'njchar\n\thello', $3 = 'aaaa'"
    assert bind.raw.count("\n") == 2


def test_pg_syslog_through_the_syslog_framing() -> None:
    """pgbadger's syslog sample parses line by line; continuations are kept as such."""
    counts: Counter[str] = Counter()
    for line in read_lines(FIXTURES + "pg-syslog.1.bz2"):
        msg = split_syslog(line, context())
        assert msg is not None
        if msg.program not in postgres.PROGRAMS:  # systemd's own lines about the service
            counts["other program"] += 1
            continue
        event = postgres.parse(msg)
        counts[event.action if event else "none"] += 1
    assert counts["none"] == 0
    assert sum(counts.values()) == 59921
    assert counts["db.login"] > 0
    assert counts["db.continuation"] > 0
    assert counts["db.query"] > 0


def test_syslog_login_line() -> None:
    """A syslog ``connection authorized`` line names user, database and host."""
    line = (
        "Feb 11 13:15:40 test-pc postgres[10819]: [6-1] db=postgres,user=postgres,app=[unknown],"
        "client=10.1.2.3 LOG:  connection authorized: user=postgres database=postgres"
    )
    msg = split_syslog(line, context())
    assert msg is not None
    e = postgres.parse(msg)
    assert e is not None
    assert (e.action, e.actor_name, e.target_resource, e.source_ip) == (
        "db.login",
        "postgres",
        "postgres",
        "10.1.2.3",
    )
    assert e.target_host == "test-pc"


# --- golden lines ---------------------------------------------------------------------------


def _golden() -> list[dict[str, object]]:
    path = DATA / "golden" / "postgres.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


@pytest.mark.parametrize("case", _golden(), ids=lambda c: str(c["name"]))
def test_golden(case: dict[str, object]) -> None:
    """A real or documented line becomes exactly its expected event."""
    lines = case["lines"]
    assert isinstance(lines, list)
    events = run(lines, case.get("prefix"))  # type: ignore[arg-type]
    assert [key_fields(e) for e in events] == case["expect"]


# --- log_line_prefix ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "line", "user", "db", "ip"),
    [
        (
            "%m [%p] %q%u@%d ",
            '2025-01-21 18:38:06.453 CET [78798] gilles@gilles FATAL:  password authentication failed for user "gilles"',  # noqa: E501
            "gilles",
            "gilles",
            None,
        ),
        (
            "%m [%p] ",
            "2025-01-21 18:37:49.782 CET [78776] LOG:  database system is ready to accept connections",  # noqa: E501
            None,
            None,
            None,
        ),
        (
            "%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ",
            "2017-09-06 08:41:41 UTC [36]: [121-1] user=postgres,db=postgres,app=pgbench,client=172.23.0.1 LOG:  duration: 2.280 ms  statement: END;",  # noqa: E501
            "postgres",
            "postgres",
            "172.23.0.1",
        ),
        (
            "%t:%r:%u@%d:[%p]:",
            "2021-05-27 17:00:00 UTC:10.1.91.65(5432):user@my_db:[24743]:LOG:  statement: SELECT 1",
            "user",
            "my_db",
            "10.1.91.65",
        ),
    ],
)
def test_configured_prefix(
    prefix: str, line: str, user: str | None, db: str | None, ip: str | None
) -> None:
    """A configured ``log_line_prefix`` reads user, database and client; auto mode agrees."""
    for configured in (prefix, None):
        e = one(line, configured)
        assert (e.actor_name, e.target_resource, e.source_ip) == (user, db, ip), configured


def test_prefix_compiler_escapes() -> None:
    """Every documented escape compiles, ``%q`` makes the rest optional, ``%%`` is literal."""
    rx = compile_prefix("%m %n %p %u %d %a %h %r %l %c %s %v %x %e %i %b %Q %% %q%u ")
    assert rx.pattern.count("(?:") >= 1
    m = compile_prefix("%m [%p] %q%u@%d ").match(
        "2024-01-01 00:00:00.000 UTC [1] LOG:  checkpoint starting: time"
    )
    assert m is not None
    assert m["u"] is None


def test_forged_client_in_application_name_does_not_move_the_source() -> None:
    """An application name carrying ``,client=6.6.6.6`` leaves the real client in place."""
    prefix = "%m [%p] user=%u,db=%d,app=%a,client=%h "
    line = (
        "2024-01-01 00:00:00.000 UTC [7] user=bob,db=app,app=x,client=6.6.6.6,client=10.0.0.9 "
        "LOG:  connection authorized: user=bob database=app"
    )
    for configured in (prefix, None):
        assert one(line, configured).source_ip == "10.0.0.9"


def test_quoted_user_cannot_forge_fields() -> None:
    """A role name with quotes and ``host=`` text stays the actor; the source is untouched."""
    line = (
        "2024-01-01 00:00:00.000 UTC [7] FATAL:  password authentication failed for user "
        '"x" host "6.6.6.6"'
    )
    e = one(line)
    assert e.actor_name == 'x" host "6.6.6.6'
    assert e.source_ip is None


@pytest.mark.parametrize(
    ("text", "micros"),
    [
        ("2021-01-04 00:05:06.011 UTC", parse_time("2021-01-04T00:05:06.011Z")),
        ("2024-06-27 00:00:07.369 CEST", parse_time("2024-06-27T00:00:07.369+02:00")),
        ("2023-03-07 09:06:08 CET", parse_time("2023-03-07T09:06:08+01:00")),
        ("2023-03-07 09:06:08 -03", parse_time("2023-03-07T09:06:08-03:00")),
        ("2023-03-07 09:06:08", parse_time("2023-03-07T09:06:08Z")),
        ("1700000000.123", 1_700_000_000_123_000),
        ("2023-13-07 09:06:08 UTC", None),
    ],
)
def test_clock(text: str, micros: int | None) -> None:
    """Timestamps with abbreviations, offsets, no zone and epoch seconds are read exactly."""
    assert Clock().parse(text) == micros


# --- csvlog / jsonlog -----------------------------------------------------------------------


def test_csvlog_quoted_newlines_and_early_emit() -> None:
    """A csvlog record with newlines inside quotes is one event, emitted when its quotes close."""
    lines = [
        '2024-01-01 00:00:00.000 UTC,"alice","shop",42,"10.0.0.5:5000",s.1,1,"idle",'
        '2024-01-01 00:00:00 UTC,1/1,0,LOG,00000,"statement: DROP TABLE',
        '  orders;",,,,,,,,,"psql"',
    ]
    a = postgres.assembler(stream_context())
    assert a.feed(lines[0], 0) == []
    assert a.pending_since() == 0
    events = a.feed(lines[1], 200)
    assert len(events) == 1
    assert a.pending_since() is None
    e = events[0]
    assert (e.action, e.actor_name, e.target_resource, e.source_ip) == (
        "db.ddl",
        "alice",
        "shop",
        "10.0.0.5",
    )
    assert e.details["statement"] == "DROP TABLE\n  orders;"
    assert e.details["command_tag"] == "DROP TABLE"


def test_jsonlog_record() -> None:
    """A PostgreSQL 15 jsonlog login failure reads user, database and client from its keys."""
    line = json.dumps(
        {
            "timestamp": "2024-01-01 10:00:00.123 UTC", "user": "mallory", "dbname": "prod",
            "pid": 99, "remote_host": "203.0.113.7", "remote_port": 51000,
            "error_severity": "FATAL", "state_code": "28P01",
            "message": 'password authentication failed for user "mallory"',
            "detail": 'Connection matched file "pg_hba.conf" line 99',
            "backend_type": "client backend",
        }
    )  # fmt: skip
    e = one(line)
    assert (e.action, e.outcome, e.reason) == ("db.login", "failure", "bad_password")
    assert (e.actor_name, e.source_ip, e.source_port) == ("mallory", "203.0.113.7", 51000)
    assert e.details["sql_state"] == "28P01"


# --- pgaudit --------------------------------------------------------------------------------


def _pgaudit_lines() -> tuple[list[str], int]:
    """pgaudit's regression output turned into server-log lines.

    ``expected/pgaudit.out`` holds the client-side echo of each record (``NOTICE:  AUDIT: ...``),
    without a server prefix: here every ``AUDIT:`` record gets a ``%m [%p] %q%u@%d `` prefix
    (fixed time, pid, user and database), keeping its continuation lines (quoted multi-line
    statements) as they are, exactly as a stderr log would carry them.
    """
    out: list[str] = []
    records = 0
    open_quotes = False
    for raw in (DATA / "pgaudit/expected/pgaudit.out").read_text().splitlines():
        if open_quotes:
            out.append(raw)
            open_quotes = raw.count('"') % 2 == 0
            continue
        for level in ("NOTICE", "WARNING", "LOG", "INFO"):
            if raw.startswith(f"{level}:  AUDIT: "):
                out.append(
                    f"2024-01-01 00:00:00.000 UTC [4242] regress_user1@contrib_regression {raw}"
                )
                records += 1
                open_quotes = raw.count('"') % 2 == 1
    return out, records


def test_pgaudit_regression_output() -> None:
    """All 415 AUDIT records of pgaudit's tests become events with class, command and object."""
    lines, records = _pgaudit_lines()
    assert records == 415
    events = run(lines)
    assert len(events) == records
    classes = Counter(str(e.details["audit_class"]) for e in events)
    assert set(classes) <= {"READ", "WRITE", "DDL", "ROLE", "FUNCTION", "MISC", "MISC_SET"}
    for e in events:
        assert e.action == ("db.ddl" if e.details["audit_class"] in {"DDL", "ROLE"} else e.action)
        assert e.actor_name == "regress_user1"
    first_ddl = next(e for e in events if e.details["audit_class"] == "DDL")
    assert (first_ddl.target_resource, first_ddl.target_resource_type) == ("public.tmp", "table")
    assert first_ddl.details["command_tag"] == "CREATE TABLE"
    multi = [e for e in events if "\n" in str(e.details["statement"])]
    assert multi, "quoted multi-line statements stay whole"
    redacted = [e for e in events if "<REDACTED>" in str(e.details["statement"])]
    assert redacted
    assert all(e.action == "db.ddl" for e in redacted)


# --- sniffing and hostile input -------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        "Feb 11 13:15:39 test-pc postgres[10808]: [1-1] db=,user=,app=,client= LOG:  listening",
        '{"kind":"Event","apiVersion":"audit.k8s.io/v1","stage":"ResponseComplete"}',
        '{"__REALTIME_TIMESTAMP":"1700000000000000","MESSAGE":"LOG:  x"}',
        '{"schema":"keeptrail.event/v1","action":"x"}',
        '10.0.0.5 - - [1/Apr/2014:00:00:01 -0500] "GET / HTTP/1.1" 403 181 "-" "the beast"',
        "2016-06-07T19:07:02.558338Z    3 Connect\tphpmyadmin@localhost on  using Socket",
        "20140402 10:22:11,myhost,root,localhost,2,5,QUERY,test,'select 1',0",
    ],
)
def test_sniff_rejects_other_formats(line: str) -> None:
    """Syslog-wrapped lines, the other JSON formats, web and MySQL lines are not sniffed."""
    assert not postgres.sniff(line)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.text(alphabet=st.characters(exclude_characters="\n"), max_size=120), max_size=12)
)
def test_arbitrary_text_never_raises_or_loses_lines(lines: list[str]) -> None:
    """Any text yields events whose raw lines are exactly the lines fed."""
    run(lines)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                '2024-01-01 00:00:00.000 UTC,"u","d",1,"h:1",s,1,"",x,1/1,0,LOG,00000,"a',
                'b",,,,',
                "2024-01-01 00:00:00 UTC [1] LOG:  statement: select 1",
                "2024-01-01 00:00:00 UTC [1] DETAIL:  x",
                "\tcontinued",
                '{"error_severity":"LOG","message":"m"}',
                "{",
                "garbage",
            ]
        ),
        max_size=15,
    )
)
def test_mixed_layouts_never_lose_lines(lines: list[str]) -> None:
    """Interleaved csv, stderr, json and garbage lines all land in exactly one event."""
    run(lines)


def test_a_record_builder_failing_never_loses_the_held_record(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """If reading one record raises, the record held before it and its own lines survive."""
    from keeptrail.parsers import postgres as pg  # noqa: PLC0415
    from keeptrail.parsers.base import StreamContext  # noqa: PLC0415

    def broken(_self: object, _line: str) -> None:
        raise ValueError("builder bug")

    monkeypatch.setattr(pg.PostgresAssembler, "_json_event", broken)
    a = pg.assembler(StreamContext(reference_us=0))
    held = "2024-01-01 00:00:00.000 UTC [7] LOG:  connection received: host=10.0.0.1 port=5000"
    bad = '{"error_severity":"LOG","message":"x"}'
    out = a.feed(held, 0) + a.feed(bad, 100) + a.flush()
    assert [e.raw for e in out] == [held, bad]
    assert out[0].action == "db.connection"
    assert (out[1].category, out[1].reason) == ("unparsed", "parser_error")


def test_continuation_lines_are_joined_once_not_per_line() -> None:
    """Thousands of continuation lines build the statement in linear time.

    The held message used to be rebuilt (copied whole) for every continuation line, quadratic
    in the statement's size; now the lines are kept apart and joined when the record is built.
    The held head field is therefore still the first line's text while the record is open.
    """
    a = postgres.assembler(stream_context())
    head = "2024-01-01 00:00:00.000 UTC [7] u@d LOG:  statement: SELECT 1"
    more = [f"  , col_{i} -- {'x' * 50}" for i in range(5000)]
    assert a.feed(head, 0) == []
    for i, line in enumerate(more):
        assert a.feed(line, 100 + i) == []
    assert a._head["msg"] == "statement: SELECT 1"
    detail = "2024-01-01 00:00:00.000 UTC [7] u@d DETAIL:  parameters: $1 = 'a"
    assert a.feed(detail, 10**6) == []
    assert a.feed("b'", 10**6 + 1) == []
    (event,) = a.flush()
    assert event.details["statement"] == "\n".join(["SELECT 1", *more])
    assert event.details["detail"] == "parameters: $1 = 'a\nb'"
    assert event.raw == "\n".join([head, *more, detail, "b'"])
