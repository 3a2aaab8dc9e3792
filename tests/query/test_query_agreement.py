"""SQL (SQLite) and the in-memory predicate select exactly the same events."""

from __future__ import annotations

import pytest
from query_eventdb import EventDB

from keeptrail.query import compile_sql, parse

QUERIES = [
    "",
    "user:root",
    "user:Alice",
    "actor.name:adm*",
    "user:*min",
    "user:*dm*",
    "user:a*n",
    "user:*",
    "NOT user:*",
    "-user:root",
    "NOT user:root",
    'user:""',
    'user:"a[b]?*"',
    "user:a[b]?*",
    "user:a\\[b\\]\\?\\*",
    "user:x%y_z*",
    "user:o'brien",
    "user:ädmin",
    "user:日*",
    "user:\U0010ffff*",
    "user:adm\U0010ffff*",
    "user:adm\U0010ffff",
    "ip:10.0.0.1",
    "ip:10.0.0.0/8",
    "source.ip:10.0.0.0/24",
    "ip:10.0.*",
    "ip:10.*",
    "ip:192.168.1.*",
    "ip:2001:db8::/32",
    'ip:"2001:db8::/32"',
    "ip:2001:db8::1",
    "ip:::1",
    "ip:::ffff:10.0.0.9",
    "ip:::ffff:0:0/96",
    "ip:0.0.0.0/0",
    "ip:::/0",
    "NOT ip:10.0.0.0/8",
    "ip:*",
    "port:22",
    "port>=443",
    "port<443",
    "src_port>22 src_port<=50022",
    "uid:0",
    "uid<0",
    "uid>-1",
    "collector.offset>=1024",
    "offset:1099511627776",
    "time>=2024-01-01",
    "time<2024-01-01",
    "time:2024-01-03",
    "time<=2024-01-03",
    "time>2024-01-03",
    "time>=2024-01-02T06:00:00Z time<2024-01-05T00:00:00+02:00",
    "time>2024-01-02T06:00:00.5",
    "ingested_at:*",
    "ingested_at>=2024-01-01",
    "severity:high",
    "severity:HIGH",
    "severity>=high",
    "severity>medium",
    "severity<low",
    "severity<=info",
    "severity<info",
    "severity:*i*",
    "category:authentication",
    "category:AUTH*",
    "action:login",
    "action:Login",
    "outcome:failure AND NOT category:session",
    "actor.type:SERVICE",
    "host:web-1",
    "host:web*",
    "host:DB*",
    "target.host:*.example.com",
    "NOT host:*",
    "resource:/etc/*",
    "method:password OR method:publickey",
    "euser:root",
    "sudo_user:postgres",
    "session:s1",
    "parser:sshd",
    "file:/var/log/*",
    "details.command:/usr/bin/passwd",
    "details.command:*passwd*",
    "details.command:*Passwd*",
    "details.command:*",
    "NOT details.command:*",
    "details.tty:22",
    "details.count:-5",
    "details.flag:true",
    "details.flag:false",
    "details.flag:1",
    "details.groups:wheel",
    "details.groups:*ee*",
    "details.groups:*",
    "details.a.b:0",
    'details.pwd:""',
    'details.pwd:"[x]*?"',
    "details.pwd:\\[x\\]\\*?",
    "details.missing:*",
    "NOT details.missing:x",
    "failed",
    "FAILED password",
    '"failed password"',
    '"session opened" OR "session closed"',
    "échec",
    "ÉCHEC",
    "ädmin",
    "fail*root",
    "*",
    "sess*user",
    '"*"',
    "\\*",
    "%",
    "_",
    "\\[chars\\]",
    "'quote'",
    '""',
    "uid=0",
    "failed OR accepted AND NOT root",
    "(failed OR accepted) AND NOT root",
    "NOT (user:root OR user:admin) severity>=medium",
    "-(ip:10.0.0.0/8 OR ip:2001:db8::/32) port:22",
    "NOT NOT user:root",
    "user:root AND (ip:10.0.0.1 OR NOT ip:*) OR severity:critical",
    "raw:*",
    'raw:""',
    "raw:*ssh2",
    "id:*",
    "NOT id:*",
    "reason:bad*",
    "reason:*",
    "a OR b OR c OR d OR root OR alice",
]


@pytest.mark.parametrize("query", QUERIES)
def test_sql_and_predicate_agree(event_db: EventDB, query: str) -> None:
    """For each query, SQLite and the predicate select the same set of events."""
    assert event_db.sql_matches(query) == event_db.predicate_matches(query)


def test_queries_are_not_trivial(event_db: EventDB) -> None:
    """Most agreement queries select some but not all events, so agreeing means something."""
    total = len(event_db.events)
    partial = [q for q in QUERIES if 0 < len(event_db.predicate_matches(q)) < total]
    assert len(partial) > len(QUERIES) * 0.7


def test_id_query_finds_that_event(event_db: EventDB) -> None:
    """`id:<uuid>` (in any spelling) selects exactly the event with that id, both ways."""
    event = event_db.events[3]
    for spelling in (event.id, event.id.upper(), "{" + event.id + "}", event.id.replace("-", "")):
        query = f"id:{spelling}" if "{" not in spelling else f'id:"{spelling}"'
        assert event_db.sql_matches(query) == {3}
        assert event_db.predicate_matches(query) == {3}


def test_many_terms_run_in_sqlite(event_db: EventDB) -> None:
    """A query at the term limit compiles to SQL that SQLite accepts and agrees."""
    query = " OR ".join(f"port:{n}" for n in range(256))
    assert event_db.sql_matches(query) == event_db.predicate_matches(query)
    query = " ".join(f"-port:{n}" for n in range(256))
    assert event_db.sql_matches(query) == event_db.predicate_matches(query)


def test_deep_nesting_runs_in_sqlite(event_db: EventDB) -> None:
    """The deepest allowed nesting stays within SQLite's expression-depth limit."""
    query = "(NOT " * 16 + "user:root" + ")" * 16
    assert event_db.sql_matches(query) == event_db.predicate_matches(query)


def _plan(event_db: EventDB, query: str) -> str:
    sql, params = compile_sql(parse(query), "sqlite")
    rows = event_db.conn.execute(
        f"EXPLAIN QUERY PLAN SELECT * FROM events WHERE {sql} ORDER BY time DESC", params
    ).fetchall()
    return " | ".join(str(row[-1]) for row in rows)


@pytest.mark.parametrize("query", ["user:root", "user:adm*", "actor.name:a*n"])
def test_actor_name_uses_its_index(event_db: EventDB, query: str) -> None:
    """Equality and prefix wildcards on actor.name search the (actor_name, time) index."""
    plan = _plan(event_db, query)
    assert "INDEX events_actor_name_time (actor_name" in plan, plan


@pytest.mark.parametrize(
    ("query", "index"),
    [
        ("ip:10.0.0.0/8", "events_source_ip_time"),
        ("ip:10.0.0.1", "events_source_ip_time"),
        ("action:login", "events_action_time"),
        ("host:web*", "events_target_host_time"),
        ("time>=2024-01-03", "events_time"),
    ],
)
def test_indexed_fields_use_their_index(event_db: EventDB, query: str, index: str) -> None:
    """IP ranges, action, host prefixes and time ranges are answered from an index."""
    plan = _plan(event_db, query)
    assert f"INDEX {index} (" in plan, plan
