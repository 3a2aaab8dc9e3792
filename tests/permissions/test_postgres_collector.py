"""The PostgreSQL collector against the real server: roles, memberships and grants made here."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest

from keeptrail.errors import UserError
from keeptrail.permissions.collectors.postgres import collect_postgres, system_name

pytestmark = pytest.mark.postgres

ROLES = ("admin", "ro", "rw", "alice", "bob", "dba", "repl", "app_api")


@pytest.fixture
def cluster(postgres_url: str) -> Iterator[tuple[str, str]]:
    """Roles (cluster-wide, so uniquely prefixed) with grants in the test's fresh database."""
    p = f"kt{uuid.uuid4().hex[:8]}"
    statements = [
        f"CREATE ROLE {p}_admin SUPERUSER NOLOGIN",
        f"CREATE ROLE {p}_ro NOLOGIN",
        f"CREATE ROLE {p}_rw NOLOGIN",
        f"CREATE ROLE {p}_alice LOGIN PASSWORD 'correct horse'"
        " VALID UNTIL '2030-01-01 00:00:00+00'",
        f"CREATE ROLE {p}_bob LOGIN NOINHERIT",
        f"CREATE ROLE {p}_dba LOGIN CREATEROLE CREATEDB",
        f"CREATE ROLE {p}_repl LOGIN REPLICATION BYPASSRLS",
        f"CREATE ROLE {p}_app_api LOGIN",
        "CREATE SCHEMA shop",
        "CREATE TABLE shop.orders (id int)",
        "CREATE TABLE shop.items (id int)",
        "CREATE SEQUENCE shop.order_ids",
        f"GRANT USAGE ON SCHEMA shop TO {p}_ro",
        f"GRANT SELECT ON shop.orders TO {p}_ro",
        f"GRANT {p}_ro TO {p}_rw",
        f"GRANT INSERT, UPDATE ON shop.orders TO {p}_rw WITH GRANT OPTION",
        f"GRANT {p}_rw TO {p}_alice",
        f"GRANT {p}_ro TO {p}_bob",
        f"GRANT {p}_admin TO {p}_dba",
        f"ALTER TABLE shop.items OWNER TO {p}_rw",
        f"GRANT USAGE ON SEQUENCE shop.order_ids TO {p}_app_api",
        "REVOKE ALL ON DATABASE " + postgres_url.rsplit("/", 1)[1] + " FROM PUBLIC",
    ]
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        for sql in statements:
            conn.execute(sql)  # type: ignore[arg-type]
    try:
        yield postgres_url, p
    finally:
        names = ", ".join(f"{p}_{r}" for r in ROLES)
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {names}")  # type: ignore[arg-type]
            conn.execute(f"DROP ROLE {names}")  # type: ignore[arg-type]


def _rights(snapshot, prefix: str) -> dict[tuple[str, str, str], object]:  # type: ignore[no-untyped-def]
    return {
        (e.principal.removeprefix(prefix + "_"), e.privilege, e.scope): e
        for e in snapshot.entitlements
        if e.principal.startswith(prefix) or e.principal == "PUBLIC"
    }


def test_roles_attributes_and_accounts(cluster: tuple[str, str]) -> None:
    """Login roles are accounts; attributes, validity and password kind (not hash) are read."""
    url, p = cluster
    result = collect_postgres(url)
    snap = result.snapshot
    assert snap.system == system_name(url)
    assert snap.source == "postgres"
    assert "keeptrail:" not in snap.system  # no credentials in the system name
    acc = {a.name.removeprefix(p + "_"): a for a in snap.accounts if a.name.startswith(p)}
    assert set(acc) == {"alice", "bob", "dba", "repl", "app_api"}  # NOLOGIN roles are not
    assert acc["alice"].expires == 1_893_456_000_000_000
    assert acc["alice"].attributes["password"] == "scram-sha-256"
    assert acc["bob"].attributes["password"] == "none"
    assert acc["bob"].attributes["inherit"] is False
    assert acc["repl"].kind == "service"
    assert acc["app_api"].kind == "service"
    assert acc["alice"].kind == "human"
    rights = _rights(snap, p)
    assert rights[("admin", "superuser", "*")].privileged  # type: ignore[attr-defined]
    assert rights[("dba", "createrole", "*")].privileged  # type: ignore[attr-defined]
    assert not rights[("dba", "createdb", "*")].privileged  # type: ignore[attr-defined]
    assert rights[("repl", "replication", "*")].privileged  # type: ignore[attr-defined]
    assert rights[("repl", "bypassrls", "*")].privileged  # type: ignore[attr-defined]
    assert ("alice", "login", "*") in rights


def test_memberships_are_transitive_with_the_intermediate_role(cluster: tuple[str, str]) -> None:
    """alice → rw → ro: membership in ro is granted via role:rw; SET ROLE to a superuser counts."""
    url, p = cluster
    rights = _rights(collect_postgres(url).snapshot, p)
    direct = rights[("alice", "member", f"{p}_rw")]
    assert direct.granted_via.startswith(f"GRANT {p}_rw TO {p}_alice")  # type: ignore[attr-defined]
    indirect = rights[("alice", "member", f"{p}_ro")]
    assert indirect.granted_via == f"role:{p}_rw"  # type: ignore[attr-defined]
    assert indirect.attributes["depth"] == 2  # type: ignore[attr-defined]
    su = rights[("dba", "superuser", "*")]
    assert su.granted_via == f"role:{p}_admin"
    assert su.privileged
    assert su.attributes["via"] == "SET ROLE"  # type: ignore[attr-defined]
    assert rights[("dba", "member", f"{p}_admin")].privileged  # type: ignore[attr-defined]


def test_table_and_schema_grants_follow_inheritance(cluster: tuple[str, str]) -> None:
    """Privileges reach members through INHERIT roles only; owners get one OWNER right."""
    url, p = cluster
    rights = _rights(collect_postgres(url).snapshot, p)
    assert rights[("ro", "SELECT", "shop.orders")].granted_via.startswith("GRANT by")  # type: ignore[attr-defined]
    assert rights[("alice", "SELECT", "shop.orders")].granted_via == f"role:{p}_ro"  # type: ignore[attr-defined]
    assert rights[("alice", "INSERT", "shop.orders")].granted_via == f"role:{p}_rw"  # type: ignore[attr-defined]
    assert rights[("rw", "INSERT", "shop.orders")].attributes["grantable"] is True  # type: ignore[attr-defined]
    assert ("alice", "USAGE", "schema:shop") in rights
    assert ("bob", "member", f"{p}_ro") in rights
    assert ("bob", "SELECT", "shop.orders") not in rights  # NOINHERIT: must SET ROLE first
    owner = [k for k in rights if k[0] == "rw" and k[2] == "shop.items"]
    assert owner == [("rw", "OWNER", "shop.items")]
    assert ("alice", "OWNER", "shop.items") in rights
    assert ("app_api", "USAGE", "shop.order_ids") in rights
    assert ("PUBLIC", "CONNECT", f"database:{url.rsplit('/', 1)[1]}") not in rights  # revoked
    assert ("PUBLIC", "USAGE", "schema:public") in rights


def test_unreachable_server_is_a_clear_error() -> None:
    """A connection failure is one line naming the system, never the password."""
    with pytest.raises(UserError) as info:
        collect_postgres("postgresql://u:hunter2secret@127.0.0.1:1/nodb")
    assert "postgres:127.0.0.1:1/nodb" in str(info.value)
    assert "hunter2secret" not in str(info.value)
