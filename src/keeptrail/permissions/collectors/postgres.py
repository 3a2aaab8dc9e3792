"""The PostgreSQL collector: roles, their attributes and memberships, and what they may touch.

Read from a live connection (read-only session) because the catalog is the only place where
the truth is: ``pg_roles`` for attributes, ``pg_auth_members`` for memberships, and the ACLs
of the database, its schemas and relations (``aclexplode``, with ``acldefault`` where an ACL
was never changed, so the defaults PostgreSQL applies are seen too).

Memberships are resolved transitively in Python from the direct grants: a right reached
through another role names that role in ``granted_via`` (``role:app_rw``). Two different
kinds of reach matter. Table and schema privileges are *inherited* (when the member role has
``INHERIT``, or, from PostgreSQL 16, when each grant has its ``INHERIT`` option). Role
attributes — SUPERUSER, CREATEROLE, REPLICATION, BYPASSRLS — are never inherited, but a member
may ``SET ROLE`` to the role that has them (from 16: when each grant has ``SET``), which is as
good: those are reported with ``attributes.via = "SET ROLE"``.

Password hashes stay in the server: only the kind of verifier (``md5``, ``scram-sha-256``,
none) is selected, and only when the connecting role may read ``pg_authid``.
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from keeptrail.errors import UserError
from keeptrail.event import uuid7
from keeptrail.permissions.model import (
    Account,
    AttributeValue,
    Collected,
    Entitlement,
    Snapshot,
)

__all__ = ["collect_postgres", "system_name"]

ATTRIBUTES: Final = ("superuser", "createrole", "createdb", "replication", "bypassrls")
PRIVILEGED_ATTRIBUTES: Final = frozenset({"superuser", "createrole", "replication", "bypassrls"})
# Predefined roles that read, write or run anything on the server.
PRIVILEGED_ROLES: Final = frozenset(
    {
        "pg_read_all_data",
        "pg_write_all_data",
        "pg_execute_server_program",
        "pg_read_server_files",
        "pg_write_server_files",
        "pg_signal_backend",
        "pg_checkpoint",
        "pg_create_subscription",
    }
)
_SERVICE_NAME: Final = re.compile(
    r"(^|[_-])(app|svc|service|bot|repl|replication|replicator|backup|exporter|monitor|"
    r"monitoring|etl|ci|api|web|worker)([_-]|\d|$)"
)
_ACL_KINDS: Final = {
    "r": "table",
    "p": "table",
    "v": "view",
    "m": "view",
    "f": "table",
    "S": "sequence",
}


@dataclass(slots=True)
class _Role:
    oid: int
    name: str
    flags: dict[str, bool]
    login: bool
    inherit: bool
    valid_until: int | None
    connection_limit: int
    password: str | None


@dataclass(slots=True, frozen=True)
class _Edge:
    role: int  # the role granted
    member: int
    admin: bool
    inherit: bool
    set_role: bool
    grantor: str


def system_name(url: str) -> str:
    """``postgres:host:port/database`` — no user, no password."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    port = parts.port or 5432
    database = parts.path.lstrip("/") or parts.username or "postgres"
    return f"postgres:{host}:{port}/{database}"


def collect_postgres(url: str, *, now: int | None = None) -> Collected:
    """One snapshot of a PostgreSQL cluster's roles and of one database's grants."""
    import psycopg  # noqa: PLC0415 — only this collector needs the driver

    system = system_name(url)
    warnings: list[str] = []
    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        raise UserError(f"cannot connect to {system}: {_first_line(exc)}") from None
    try:
        conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        version = int(conn.execute("SHOW server_version_num").fetchone()[0])  # type: ignore[index]
        roles = _roles(conn, warnings)
        edges = _edges(conn, version)
        grants = list(_grants(conn))
    except psycopg.Error as exc:
        raise UserError(f"reading the catalog of {system}: {_first_line(exc)}") from None
    finally:
        conn.close()
    taken_at = now if now is not None else time.time_ns() // 1000
    entitlements = _entitlements(system, roles, edges, grants)
    privileged = {e.principal for e in entitlements if e.privileged}
    accounts = tuple(_account(system, r, r.name in privileged) for r in roles.values() if r.login)
    snapshot = Snapshot(uuid7(), system, "postgres", taken_at, accounts, tuple(entitlements))
    return Collected(snapshot, tuple(warnings))


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _roles(conn: Any, warnings: list[str]) -> dict[int, _Role]:
    import psycopg  # noqa: PLC0415

    passwords: dict[int, str] = {}
    try:
        for oid, kind in conn.execute(
            "SELECT oid, CASE WHEN rolpassword IS NULL THEN 'none'"
            " WHEN rolpassword LIKE 'md5%' THEN 'md5'"
            " WHEN rolpassword LIKE 'SCRAM-SHA-256$%' THEN 'scram-sha-256'"
            " ELSE 'other' END FROM pg_authid"
        ):
            passwords[int(oid)] = str(kind)
    except psycopg.errors.InsufficientPrivilege:
        warnings.append("pg_authid is not readable by this role: password kinds not collected")
    out: dict[int, _Role] = {}
    for row in conn.execute(
        "SELECT oid, rolname, rolsuper, rolcreaterole, rolcreatedb, rolreplication,"
        " rolbypassrls, rolcanlogin, rolinherit,"
        " CASE WHEN rolvaliduntil IS NULL OR rolvaliduntil = 'infinity' THEN NULL"
        "  ELSE (extract(epoch FROM rolvaliduntil) * 1000000)::bigint END,"
        " rolconnlimit FROM pg_roles"
    ):
        oid = int(row[0])
        out[oid] = _Role(
            oid=oid,
            name=str(row[1]),
            flags=dict(zip(ATTRIBUTES, (bool(v) for v in row[2:7]), strict=True)),
            login=bool(row[7]),
            inherit=bool(row[8]),
            valid_until=None if row[9] is None else int(row[9]),
            connection_limit=int(row[10]),
            password=passwords.get(oid),
        )
    return out


def _edges(conn: Any, version: int) -> list[_Edge]:
    if version >= 160000:
        sql = (
            "SELECT m.roleid, m.member, m.admin_option, m.inherit_option, m.set_option,"
            " coalesce(g.rolname, '') FROM pg_auth_members m"
            " LEFT JOIN pg_roles g ON g.oid = m.grantor"
        )
    else:  # before 16: inheritance is the member's INHERIT attribute, SET always allowed
        sql = (
            "SELECT m.roleid, m.member, m.admin_option, r.rolinherit, true,"
            " coalesce(g.rolname, '') FROM pg_auth_members m"
            " JOIN pg_roles r ON r.oid = m.member LEFT JOIN pg_roles g ON g.oid = m.grantor"
        )
    return [
        _Edge(int(r[0]), int(r[1]), bool(r[2]), bool(r[3]), bool(r[4]), str(r[5]))
        for r in conn.execute(sql)
    ]


@dataclass(slots=True, frozen=True)
class _Grant:
    grantee: int  # 0 = PUBLIC
    privilege: str
    scope: str
    owner: int
    grantor: int
    grantable: bool
    kind: str


_SYSTEM_SCHEMAS: Final = (
    "nspname NOT IN ('pg_catalog', 'information_schema')"
    " AND nspname NOT LIKE 'pg\\_toast%' AND nspname NOT LIKE 'pg\\_temp%'"
)
_GRANTS_SQL: Final = f"""
SELECT (a).grantee, (a).privilege_type, 'database:' || datname, datdba,
       (a).grantor, (a).is_grantable, 'database'
  FROM (SELECT datname, datdba,
               aclexplode(coalesce(datacl, acldefault('d'::"char", datdba))) AS a
          FROM pg_database WHERE datname = current_database()) d
UNION ALL
SELECT (a).grantee, (a).privilege_type, 'schema:' || nspname, nspowner,
       (a).grantor, (a).is_grantable, 'schema'
  FROM (SELECT nspname, nspowner,
               aclexplode(coalesce(nspacl, acldefault('n'::"char", nspowner))) AS a
          FROM pg_namespace WHERE {_SYSTEM_SCHEMAS}) n
UNION ALL
SELECT (a).grantee, (a).privilege_type, nspname || '.' || relname, relowner,
       (a).grantor, (a).is_grantable, relkind::text
  FROM (SELECT n.nspname, c.relname, c.relowner, c.relkind,
               aclexplode(coalesce(c.relacl, acldefault(
                   CASE WHEN c.relkind = 'S' THEN 's'::"char" ELSE 'r'::"char" END,
                   c.relowner))) AS a
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND {_SYSTEM_SCHEMAS}) c
"""


def _grants(conn: Any) -> Iterable[_Grant]:
    """Privileges on this database, its schemas and relations (system schemas left out)."""
    rows = conn.execute(_GRANTS_SQL)
    for r in rows:
        yield _Grant(int(r[0]), str(r[1]), str(r[2]), int(r[3]), int(r[4]), bool(r[5]), str(r[6]))


def _entitlements(
    system: str, roles: dict[int, _Role], edges: list[_Edge], grants: list[_Grant]
) -> list[Entitlement]:
    out: list[Entitlement] = []
    by_member: dict[int, list[_Edge]] = {}
    for e in edges:
        by_member.setdefault(e.member, []).append(e)
    reach = {oid: _reachable(oid, by_member) for oid in roles}

    def name(oid: int) -> str:
        return "PUBLIC" if oid == 0 else roles[oid].name if oid in roles else f"oid:{oid}"

    for role in roles.values():
        if role.login:
            attrs: dict[str, AttributeValue] = {"valid_until": role.valid_until}
            out.append(
                Entitlement(
                    system,
                    role.name,
                    "role",
                    "login",
                    "*",
                    "rolcanlogin",
                    role.flags["superuser"],
                    attrs,
                )
            )
        for flag in ATTRIBUTES:
            if role.flags[flag]:
                out.append(
                    Entitlement(
                        system,
                        role.name,
                        "role",
                        flag,
                        "*",
                        "role attribute",
                        flag in PRIVILEGED_ATTRIBUTES,
                    )
                )
        for target, path in reach[role.oid].items():
            t = roles.get(target)
            if t is None:
                continue
            elevated = t.name in PRIVILEGED_ROLES or any(t.flags[f] for f in PRIVILEGED_ATTRIBUTES)
            first = path[0]
            via = (
                f"GRANT {t.name} TO {role.name}"
                + (f" (by {first.grantor})" if first.grantor else "")
                if len(path) == 1
                else f"role:{roles[path[-1].member].name}"
            )
            out.append(
                Entitlement(
                    system,
                    role.name,
                    "role",
                    "member",
                    t.name,
                    via,
                    elevated,
                    {
                        "admin_option": path[-1].admin,
                        "inherit": all(e.inherit for e in path),
                        "set_role": all(e.set_role for e in path),
                        "depth": len(path),
                    },
                )
            )
            if all(e.set_role for e in path):
                for flag in ATTRIBUTES:
                    if t.flags[flag]:
                        out.append(
                            Entitlement(
                                system,
                                role.name,
                                "role",
                                flag,
                                "*",
                                f"role:{t.name}",
                                flag in PRIVILEGED_ATTRIBUTES,
                                {"via": "SET ROLE"},
                            )
                        )
    members_of: dict[int, list[tuple[int, list[_Edge]]]] = {}
    for member, targets in reach.items():
        for target, path in targets.items():
            if all(e.inherit for e in path):
                members_of.setdefault(target, []).append((member, path))
    owned: set[str] = set()
    for g in grants:
        is_owner = g.grantee == g.owner and g.grantor == g.owner
        privilege = g.privilege
        if is_owner:  # one OWNER entitlement per object, not one per implicit privilege
            if g.scope in owned:
                continue
            owned.add(g.scope)
            privilege = "OWNER"
        grant_attrs: dict[str, AttributeValue] = {
            "object": _ACL_KINDS.get(g.kind, g.kind),
            "grantable": g.grantable,
        }
        via = "owner" if is_owner else f"GRANT by {name(g.grantor)}"
        out.append(
            Entitlement(
                system, name(g.grantee), "role", privilege, g.scope, via, False, grant_attrs
            )
        )
        for member, _path in members_of.get(g.grantee, ()):
            out.append(
                Entitlement(
                    system,
                    name(member),
                    "role",
                    privilege,
                    g.scope,
                    f"role:{name(g.grantee)}",
                    False,
                    grant_attrs,
                )
            )
    return out


def _reachable(start: int, by_member: dict[int, list[_Edge]]) -> dict[int, list[_Edge]]:
    """Every role ``start`` is a member of, directly or not, with the shortest grant path."""
    paths: dict[int, list[_Edge]] = {}
    queue: deque[tuple[int, list[_Edge]]] = deque([(start, [])])
    while queue:
        current, path = queue.popleft()
        for e in by_member.get(current, ()):
            if e.role in paths or e.role == start:
                continue
            paths[e.role] = [*path, e]
            queue.append((e.role, paths[e.role]))
    return paths


def _account(system: str, role: _Role, privileged: bool) -> Account:
    if role.name == "postgres" or role.name.startswith("pg_"):
        kind = "system"
    elif role.flags["replication"] or _SERVICE_NAME.search(role.name.lower()):
        kind = "service"
    else:
        kind = "human"
    attrs: dict[str, AttributeValue] = {**role.flags}
    attrs.update(
        {
            "inherit": role.inherit,
            "connection_limit": role.connection_limit,
            "password": role.password,
            "privileged": privileged,
        }
    )
    return Account(
        system=system,
        name=role.name,
        kind=kind,
        uid=role.oid,
        locked=False,
        expires=role.valid_until,
        attributes=attrs,
    )
