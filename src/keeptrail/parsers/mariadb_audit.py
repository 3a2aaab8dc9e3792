"""The MariaDB ``server_audit`` plugin's file format (also used by Percona's audit plugin clone).

``timestamp,serverhost,username,host,connectionid,queryid,operation,database,object,retcode``
— one line per event (the plugin writes a query's newlines as spaces). ``object`` is a query
in single quotes with ``\\'`` escapes for ``QUERY`` events, a table name for ``READ`` /
``WRITE`` / ``CREATE`` / ``ALTER`` / ``DROP`` / ``RENAME`` table events, empty for connections.

The user name of a failed connection is whatever the client sent, commas included, so the
line is split from both ends: the user is everything between the server host and the last
position where ``,host,connid,queryid,OPERATION,db,object,retcode`` still fits.

Events: ``CONNECT`` → ``db.login`` (success, or failure when ``retcode`` is not 0),
``FAILED_CONNECT`` → ``db.login`` failure (1045 ``bad_password``, otherwise ``denied``),
``DISCONNECT`` → ``db.logout``, ``QUERY*`` → ``db.ddl`` / ``db.query`` by the statement's
command (failure with reason ``error``, or ``denied`` for privilege errors, when ``retcode``
is not 0), table events → ``db.table_access`` (``details.operation`` says which).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Final

from keeptrail.event import DetailValue, Event, datetime_to_micros
from keeptrail.netaddr import ip_or_hostname
from keeptrail.parsers.base import LineAssembler, StreamContext
from keeptrail.parsers.numerals import ascii_int
from keeptrail.parsers.sql_command import command_tag, is_ddl

NAME: Final = "mariadb_audit"

_LINE = re.compile(
    r"(?P<ts>\d{8} \d\d:\d\d:\d\d),(?P<server>[^,\s]*),(?P<user>.*),(?P<host>[^,]*),"
    r"(?P<conn>\d+),(?P<qid>\d+),(?P<op>[A-Z_]+),(?P<db>[^,]*),"
    r"(?P<obj>'(?:[^'\\]|\\.)*'?|[^',]*),(?P<ret>-?\d*)",
    re.DOTALL,
)
# MySQL error numbers that mean "not allowed" rather than "went wrong".
_DENIED_CODES: Final = frozenset({"1044", "1142", "1143", "1227", "1370", "1410", "3530"})
_UNESCAPE = re.compile(r"\\(.)")


def sniff(line: str) -> bool:
    """A ``server_audit`` file line (starts ``YYYYMMDD HH:MM:SS,``)."""
    return (
        len(line) > 20 and line[8] == " " and line[17] == "," and _LINE.fullmatch(line) is not None
    )


def assembler(ctx: StreamContext) -> MariadbAuditAssembler:
    """A line-at-a-time assembler for one server_audit log."""
    return MariadbAuditAssembler(ctx)


class MariadbAuditAssembler(LineAssembler):
    """Single-line records: every ``feed`` returns one event."""

    __slots__ = ("_minutes",)

    def __init__(self, ctx: StreamContext) -> None:
        super().__init__(ctx)
        self._minutes: dict[str, int] = {}

    def parse(self, line: str) -> Event:
        """One line, one event (``unparsed`` when it does not fit the format)."""
        m = _LINE.fullmatch(line)
        event = self._event(m) if m is not None else None
        if event is None:
            event = self._unparsed(line, "no_parser_matched")
        event.collector_parser = NAME
        return event

    def _time(self, ts: str) -> int | None:
        minute = self._minutes.get(ts[:14])
        if minute is None:
            try:
                local = datetime.strptime(ts[:14], "%Y%m%d %H:%M").replace(tzinfo=self._ctx.tz)
            except ValueError:
                return None
            minute = datetime_to_micros(local)
            if len(self._minutes) > 4096:
                self._minutes.clear()
            self._minutes[ts[:14]] = minute
        seconds = ascii_int(ts[15:17], max_value=60)
        return None if seconds is None else minute + seconds * 1_000_000

    def _event(self, m: re.Match[str]) -> Event | None:
        stamp = self._time(m["ts"])
        if stamp is None:
            return None
        op, ret, obj = m["op"], m["ret"], m["obj"]
        e = Event(
            time=stamp,
            category="database",
            action="db.table_access",
            outcome="success",
            target_system="mysql",
            target_host=m["server"] or self._ctx.host,
        )
        details: dict[str, DetailValue] = {
            "operation": op,
            "connection_id": m["conn"],
            "query_id": m["qid"],
        }
        if ret:
            details["retcode"] = ret
        failed = ret not in {"", "0"}
        db = m["db"]
        if op in {"CONNECT", "FAILED_CONNECT", "CHANGEUSER"}:
            e.action, e.category = "db.login", "authentication"
            if op == "FAILED_CONNECT" or failed:
                e.outcome, e.reason = "failure", "bad_password" if ret == "1045" else "denied"
        elif op == "DISCONNECT":
            e.action, e.category = "db.logout", "session"
        elif op.startswith("QUERY"):
            statement = _UNESCAPE.sub(
                r"\1", obj[1:-1] if obj.endswith("'") and len(obj) > 1 else obj[1:]
            )
            tag = command_tag(statement)
            e.action = "db.ddl" if is_ddl(tag) else "db.query"
            details["statement"] = statement
            if tag is not None:
                details["command_tag"] = tag
            if failed:
                e.outcome, e.reason = "failure", "denied" if ret in _DENIED_CODES else "error"
        elif obj:
            e.target_resource, e.target_resource_type = (f"{db}.{obj}" if db else obj), "table"
        if e.outcome == "failure":
            e.severity = "low"
        user = m["user"]
        if user:
            e.actor_name, e.actor_type = user, "user"
        if db and e.target_resource is None:
            e.target_resource, e.target_resource_type = db, "database"
        e.source_ip, e.source_host = ip_or_hostname(m["host"])
        e.details = details
        return e
