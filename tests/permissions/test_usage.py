"""Usage from the audit store: system scoping, tallies, caps, and names that cannot inject."""

from __future__ import annotations

import pytest
from tests.permissions.history_gen import DAY, NOW, History

from keeptrail.permissions.usage import UsageReader, event_scope, statement_tables
from keeptrail.query import parse
from keeptrail.store.sqlite import SQLiteStore


@pytest.mark.parametrize(
    ("statement", "tables"),
    [
        ("SELECT * FROM orders WHERE id = 1", ["orders"]),
        ("select a from Public.Orders o join items i on i.o = o.id", ["public.orders", "items"]),
        ('INSERT INTO "Mixed"."Case" VALUES (1)', ["Mixed.Case"]),
        ("UPDATE accounts SET x = 1", ["accounts"]),
        ("DELETE FROM public.sessions", ["public.sessions"]),
        ("TRUNCATE TABLE audit_log", ["audit_log"]),
        ("SELECT 1", []),
        ("SELECT * FROM (SELECT 1) AS s", []),
    ],
)
def test_statement_tables(statement: str, tables: list[str]) -> None:
    """Tables after FROM/JOIN/INTO/UPDATE/TABLE, unquoted names folded as PostgreSQL does."""
    assert statement_tables(statement) == tables


def test_event_scopes_and_hostile_names(store: SQLiteStore) -> None:
    """Names with quotes, wildcards and escapes are matched exactly, never read as syntax."""
    host, user = 'web" OR *', "\x1b[2Jroot*"
    h = History()
    h.ssh_login(host, user, 1)
    h.ssh_login("web-1", "root", 1)
    h.write(store)
    reader = UsageReader(store, since=NOW - 90 * DAY, until=NOW)
    seen = reader.activity(f"linux:{host}", user).last_action
    assert seen is not None
    assert store.get(seen.event_id).actor_name == user
    assert reader.activity(f"linux:{host}", "root").last_action is None
    assert reader.activity("linux:web-1", user).last_action is None
    assert event_scope("postgres:db:5432/app") == parse("target.system:postgres")
    assert event_scope("k8s:prod") == parse("target.system:kubernetes")
    assert event_scope("import:okta") == parse("target.system:okta")
    assert event_scope("k8s:prod", {"k8s:prod": "target.host:api-1"}) == parse("target.host:api-1")


@pytest.fixture
def reader(store: SQLiteStore) -> UsageReader:
    h = History()
    h.ssh_login("web-1", "alice", 1, ip="10.0.0.1")
    h.ssh_login("web-1", "alice", 2, ip="10.0.0.2")
    h.ssh_login("web-2", "alice", 1, ip="10.0.0.3")  # another host
    h.sudo("web-1", "alice", "/usr/bin/id", 1, times=30)
    h.sudo("web-1", "alice", "/usr/bin/uptime", 100)  # outside the window
    h.sql("db-1", "app", "SELECT * FROM orders", "SELECT", 1, times=2)
    h.sql("db-1", "app", "SELECT total FROM x", "SELECT", 1, table="public.invoices")
    h.k8s("sa", "get", "pods", "ci", 1)
    h.write(store)
    return UsageReader(store, since=NOW - 90 * DAY, until=NOW, scan_limit=25)


def test_tallies_are_scoped_to_the_system_and_window(reader: UsageReader) -> None:
    """Logins on another host and commands before the window do not count."""
    sources = reader.login_sources("linux:web-1", "alice")
    assert sorted(sources.items) == ["10.0.0.1", "10.0.0.2"]
    activity = reader.activity("linux:web-1", "alice")
    assert activity.last_action is not None
    assert activity.last_action.time == NOW - DAY
    assert reader.activity("linux:web-3", "alice").last_action is None
    assert reader.coverage("linux:web-3") is None
    assert reader.coverage("linux:web-1") is not None


def test_scan_limit_marks_truncation(reader: UsageReader) -> None:
    """More history than scan_limit is cut and reported as truncated, never silently."""
    sudo = reader.sudo_commands("linux:web-1", "alice")
    assert sudo.truncated is True
    assert sudo.items["/usr/bin/id"].count == 25
    assert "/usr/bin/uptime" not in sudo.items


def test_sql_and_k8s_keys(reader: UsageReader) -> None:
    """SQL uses are VERB table (pgaudit object first, else the statement); k8s verb resource ns."""
    sql = reader.sql_statements("postgres:db-1:5432/app", "app")
    assert {k: t.count for k, t in sql.items.items()} == {
        "SELECT orders": 2,
        "SELECT public.invoices": 1,
    }
    k8s = reader.k8s_requests("k8s:prod", "sa")
    assert list(k8s.items) == ["get pods ci"]


def test_one_pass_agrees_with_per_principal_queries(store: SQLiteStore) -> None:
    """prefetch() (complete or cut short by its limit) answers exactly as per-principal queries."""
    h = History()
    h.ssh_login("web-1", "alice", 1, ip="10.0.0.1")
    h.sudo("web-1", "alice", "/usr/bin/id", 2, times=3)
    h.ssh_login("web-1", "bob", 120)  # idle in the window: dormant, not never used
    h.sudo("web-1", "carol", "/usr/bin/uptime", 5)
    h.ssh_login("web-2", "dave", 1)
    h.write(store)

    def reader(limit: int | None) -> UsageReader:
        r = UsageReader(store, since=NOW - 90 * DAY, until=NOW, system_scan_limit=limit or 10**6)
        if limit is not None:
            r.prefetch("linux:web-1")
        return r

    plain, full, cut = reader(None), reader(10**6), reader(2)
    for name in ("alice", "bob", "carol", "dave", "nobody"):
        answers = [
            (
                r.activity("linux:web-1", name),
                r.sudo_commands("linux:web-1", name),
                r.login_sources("linux:web-1", name),
                r.sql_statements("linux:web-1", name),
            )
            for r in (plain, full, cut)
        ]
        assert answers[0] == answers[1] == answers[2], name
    assert full.activity("linux:web-1", "bob").last_action is not None
    assert full.coverage("linux:web-1") == plain.coverage("linux:web-1")
