"""From one PostgreSQL log record (whatever its layout) to an event.

The stderr, csvlog, jsonlog and syslog readers all reduce a record to a :class:`PgRecord`
(severity, message, the session's user/database/client, DETAIL and STATEMENT text);
:func:`to_event` knows the messages: connections, authentication, disconnections, statements,
errors and pgaudit's ``AUDIT:`` lines. The actor is the database role, never the OS user.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from keeptrail.event import DetailValue, Event
from keeptrail.netaddr import canonical_ip, is_hostname
from keeptrail.parsers.numerals import PORT_MAX, ascii_int
from keeptrail.parsers.sql_command import command_tag, is_ddl

# Client addresses repeat; canonicalising each once is a measurable share of the parse.
_cached_ip = lru_cache(maxsize=16_384)(canonical_ip)


@dataclass(slots=True)
class PgRecord:
    """One log record's fields; ``None`` (or ``[unknown]``, cleaned here) when absent."""

    time: int
    severity: str
    message: str
    user: str | None = None
    database: str | None = None
    host: str | None = None
    port: str | None = None
    app: str | None = None
    pid: str | None = None
    session: str | None = None
    sql_state: str | None = None
    detail: str | None = None
    statement: str | None = None
    backend: str | None = None
    target_host: str | None = None


_RECEIVED = re.compile(r"connection received: host=(\S*?)(?: port=(\d+))?\s*$")
_AUTHORIZED = re.compile(
    r"(?:replication )?connection authorized: user=(.*?)(?: database=(.*?))?"
    r"(?: application_name=(.*?))?(?: (SSL enabled|GSS|SSL).*)?\s*$",
    re.DOTALL,
)
_AUTHENTICATED = re.compile(r'connection authenticated: (?:user|identity)="(.*)" method=(\w+)')
_AUTH_FAILED = re.compile(r'(\w+) authentication failed for user "(.*)"\s*$', re.DOTALL)
_HBA = re.compile(
    r"(no pg_hba\.conf entry|pg_hba\.conf rejects connection) for (?:replication connection "
    r'from )?host "([^"]*)", user "(.*?)"(?:, database "(.*)")?'
    r"(?:, (SSL on|SSL off|SSL encryption|GSS encryption|no encryption))?$",
    re.DOTALL,
)
_ROLE_MISSING = re.compile(r'role "(.*)" does not exist\s*$', re.DOTALL)
_DB_MISSING = re.compile(r'database "(.*)" does not exist\s*$', re.DOTALL)
_DISCONNECT = re.compile(
    r"disconnection: session time: (\S+) user=(.*?) database=(.*?) host=(\S*)(?: port=(\d+))?\s*$",
    re.DOTALL,
)
_STATEMENT = re.compile(
    r"(?:duration: (?P<ms>[\d.]+) ms +)?(?P<kind>statement|execute|parse|bind)"
    r"(?: (?P<name>[^:\n]*?))?: (?P<sql>.*)",
    re.DOTALL,
)
_DURATION_ONLY = re.compile(r"duration: ([\d.]+) ms\s*$")
_UNKNOWN: Final = frozenset({"", "[unknown]", "-"})


def _clean(value: str | None) -> str | None:
    return None if value is None or value in _UNKNOWN else value


def to_event(rec: PgRecord) -> Event:
    """The event one record means; ``db.message`` for server messages it does not single out."""
    msg = rec.message
    user, database = _clean(rec.user), _clean(rec.database)
    host, port = _clean(rec.host), rec.port
    details: dict[str, DetailValue] = {"severity": rec.severity}
    e = Event(time=rec.time, category="database", action="db.message", target_system="postgres")
    e.target_host = rec.target_host
    action, outcome, reason = "db.message", "unknown", None
    first = msg[:12]
    if first.startswith("connection r"):
        m = _RECEIVED.match(msg)
        if m is not None:
            action, host, port = "db.connection", m[1], m[2] or port
            e.category = "session"
    elif first.startswith("connection a") or first.startswith("replication "):
        m = _AUTHORIZED.match(msg)
        if m is not None:
            action, outcome = "db.login", "success"
            user, database = user or m[1], database or m[2]
            e.category = "authentication"
            if m[3]:
                details["application"] = m[3]
            if m[4]:
                details["ssl"] = m[4].startswith("SSL")
        else:
            m = _AUTHENTICATED.match(msg)
            if m is not None:
                action, outcome, e.category = "db.auth_step", "success", "authentication"
                details["identity"] = m[1]
                e.actor_auth_method = m[2]
    elif first.startswith("disconnectio"):
        m = _DISCONNECT.match(msg)
        if m is not None:
            action, outcome, e.category = "db.logout", "success", "session"
            user, database, host = user or m[2], database or m[3], m[4]
            port = m[5] or port
            details["session_time"] = m[1]
    elif msg.startswith("AUDIT: "):
        action, outcome = _pgaudit(msg[7:], details, e, database)
    elif rec.severity == "FATAL" and "authentication failed" in msg:
        m = _AUTH_FAILED.match(msg)
        if m is not None:
            action, outcome, reason, e.category = (
                "db.login",
                "failure",
                "bad_password",
                "authentication",
            )
            user = m[2]
            e.actor_auth_method = m[1].lower()
            if rec.detail and "does not exist" in rec.detail and rec.detail.startswith("Role"):
                reason = "invalid_user"
    elif rec.severity == "FATAL" and "pg_hba.conf" in msg:
        m = _HBA.match(msg)
        if m is not None:
            action, outcome, reason, e.category = "db.login", "failure", "denied", "authentication"
            host, user, database = m[2], m[3], m[4] or database
            if m[5]:
                details["encryption"] = m[5]
    elif rec.severity == "FATAL" and msg.endswith("does not exist"):
        m = _ROLE_MISSING.match(msg)
        mdb = _DB_MISSING.match(msg)
        if m is not None or mdb is not None:
            action, outcome, e.category = "db.login", "failure", "authentication"
            reason = "invalid_user" if m is not None else "unknown_database"
            user = m[1] if m is not None else user
            database = mdb[1] if mdb is not None else database
    else:
        action, outcome, reason = _statement(msg, rec, details, e)
    if action == "db.message":
        details["message"] = msg
    if rec.detail:
        details["detail"] = rec.detail
    if rec.sql_state and rec.sql_state != "00000":
        details["sql_state"] = rec.sql_state
    if rec.app and _clean(rec.app) and "application" not in details:
        details["application"] = rec.app
    if rec.pid:
        details["pid"] = rec.pid
    if rec.session:
        e.actor_session = rec.session
    e.action, e.outcome, e.reason = action, outcome, reason
    if outcome == "failure":
        e.severity = "low"
    if user is not None:
        e.actor_name, e.actor_type = user, "user"
    if e.target_resource is None and database is not None:
        e.target_resource, e.target_resource_type = database, "database"
    elif database is not None:
        details["database"] = database
    _set_source(e, host, port, details)
    e.details = details
    return e


def _statement(
    msg: str, rec: PgRecord, details: dict[str, DetailValue], e: Event
) -> tuple[str, str, str | None]:
    """Statements logged by ``log_statement`` / ``log_min_duration_statement``, and errors."""
    m = _STATEMENT.match(msg) if msg[:1] in "sdepb" else None
    if m is not None:
        sql = m["sql"]
        if m["ms"]:
            details["duration_ms"] = m["ms"]
        if m["name"]:
            details["prepared"] = m["name"]
        tag = command_tag(sql)
        _put_statement(details, sql, tag)
        if m["kind"] in {"parse", "bind"}:
            details["phase"] = m["kind"]
            return "db.prepare", "success", None
        return ("db.ddl" if is_ddl(tag) else "db.query"), "success", None
    if rec.severity in {"ERROR", "FATAL", "PANIC"} and rec.statement:
        tag = command_tag(rec.statement)
        _put_statement(details, rec.statement, tag)
        details["error"] = msg
        reason = "denied" if msg.startswith("permission denied") else "error"
        return ("db.ddl" if is_ddl(tag) else "db.query"), "failure", reason
    d = _DURATION_ONLY.match(msg)
    if d is not None:
        details["duration_ms"] = d[1]
    if rec.statement:
        details["statement"] = rec.statement
    return "db.message", "unknown", None


def _put_statement(details: dict[str, DetailValue], sql: str, tag: str | None) -> None:
    details["statement"] = sql
    if tag is not None:
        details["command_tag"] = tag


def _pgaudit(
    payload: str, details: dict[str, DetailValue], e: Event, database: str | None
) -> tuple[str, str]:
    """``SESSION|OBJECT,stmt,substmt,CLASS,COMMAND,OBJECT_TYPE,OBJECT_NAME,STATEMENT,PARAMETER``."""
    try:
        fields = next(csv.reader(payload.splitlines(keepends=True), strict=True))
    except (csv.Error, StopIteration):
        fields = []
    if len(fields) < 8 or fields[0] not in {"SESSION", "OBJECT"}:
        details["message"] = "AUDIT: " + payload
        return "db.message", "unknown"
    kind, stmt_id, sub_id, klass, command, obj_type, obj_name, statement = fields[:8]
    details["audit_type"] = kind
    details["audit_class"] = klass
    details["statement_id"] = stmt_id
    details["substatement_id"] = sub_id
    details["command_tag"] = command
    details["statement"] = statement
    if len(fields) > 8 and fields[8] not in {"<not logged>", "<none>"}:
        details["parameters"] = ",".join(fields[8:])
    if obj_name:
        e.target_resource = obj_name
        e.target_resource_type = obj_type.lower() or "object"
    ddl = klass in {"DDL", "ROLE"} or is_ddl(command)
    return ("db.ddl" if ddl else "db.query"), "success"


def _set_source(
    e: Event, host: str | None, port: str | None, details: dict[str, DetailValue]
) -> None:
    host = _clean(host)
    if host is None:
        return
    if host.endswith(")") and "(" in host:  # %r: host(port)
        host, _, rest = host[:-1].partition("(")
        port = port or rest
    ip = _cached_ip(host)
    if ip is not None:
        e.source_ip = ip
        e.source_port = ascii_int(port, max_value=PORT_MAX)
    elif host == "[local]":
        details["client"] = "local"
    elif is_hostname(host):
        e.source_host = host
    else:
        details["client"] = host
