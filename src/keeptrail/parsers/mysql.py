"""MySQL / MariaDB general query log and error log (access denied).

General log entries are ``[TIME] ID COMMAND ARGUMENT``; the time column is written only when
it changes (MySQL < 5.7: ``051007 21:55:24``; 5.7+: ``2016-06-07T19:07:02.558338Z``), so a
line without one inherits the last seen. A query spans lines: lines that do not start an
entry continue the previous one, which is therefore held until the next entry starts.

The user is named only on ``Connect``; the assembler remembers, per thread id, the user,
host and database, and gives later ``Query``/``Init DB``/``Quit`` lines of that thread the same
actor (``Quit`` forgets the thread). It remembers at most :data:`MAX_THREADS` threads, the
least recently active forgotten first (a connection pool's busy threads stay), so a stream of
connections without ``Quit`` cannot grow memory without end; a forgotten thread's later lines
have no actor. Header lines (``mysqld, Version: ... started with:``) are one
``db.server_start`` event. Error-log lines (``[Warning] Access denied for user 'u'@'h'``) are
read too, so the same format name covers both files.

A statement's text is the client's, newlines included, so a continuation line can look
exactly like an entry (``\t\t7 Connect\troot@6.6.6.6 on prod``). Two rules keep such text
from naming who a thread is: while a ``Query``/``Execute``/``Prepare`` is held, a
``Connect`` line without a time column continues the statement instead of starting an entry;
and when the stream's first entry has MySQL 5.7+'s per-entry ISO timestamp, no line without a
time column starts an entry at all (decided once, by the first entry, which a client's text
cannot be). The cost, in pre-5.7 logs only (which write the time only when
it changes): a real ``Connect`` written in the same second as the statement before it is read
as part of that statement (its text stays in the statement and ``raw``, nothing is lost, but
that thread's later lines have no actor). Forged ``Quit``/``Init DB``/``Query`` lines remain
possible in pre-5.7 logs: they are as common after a statement as real ones, so they cannot be
told apart there (5.7+ logs are not affected).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Final

from keeptrail.event import DetailValue, Event, datetime_to_micros, unparsed
from keeptrail.netaddr import ip_or_hostname
from keeptrail.parsers.base import StreamContext
from keeptrail.parsers.sql_command import command_tag, is_ddl

NAME: Final = "mysql"

_TIME = (
    r"\d{6}\s+\d{1,2}:\d\d:\d\d|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)?"
)
_COMMANDS = (
    "Connect|Query|Quit|Init DB|Execute|Prepare|Close stmt|Reset stmt|Field List|Statistics|"
    "Shutdown|Kill|Change user|Binlog Dump|Ping|Refresh|Processlist|Debug|Sleep|Long Data|"
    "Set option|Fetch|Daemon|Error|Connect Out|Create DB|Drop DB|Register Slave|Table Dump|"
    "Delayed insert|Time"
)
_ENTRY = re.compile(
    rf"(?P<ts>{_TIME})?\s+(?P<id>\d{{1,20}}) (?P<cmd>{_COMMANDS})(?:[ \t]+|$)(?P<arg>.*)"
)
_HEADER = re.compile(
    r"\S*mysqld\S*, Version: .*started with:\s*$|Tcp port: \d+|Time\s+Id\s+Command\s+Argument"
)
_CONNECT = re.compile(
    r"(?P<user>.*)@(?P<host>\S*)(?: as (?P<proxy>\S*))? on(?: (?P<db>\S*))?"
    r"(?: +using (?P<via>.+?))?\s*"
)
_DENIED_PREFIX = "Access denied for user '"
_DENIED_PASSWORD = re.compile(r" \(using password: (YES|NO)\)$")


def _denied(text: str) -> tuple[str, str, str | None] | None:
    """(user, host, YES|NO|None) of ``Access denied for user 'u'@'h' (using password: X)``.

    Split from the right in linear time: the user name is the client's text and may contain
    quotes and ``'@'`` (a regex with ``'(.*)'@'`` backtracks quadratically on such lines).
    """
    if not text.startswith(_DENIED_PREFIX):
        return None
    body = text[len(_DENIED_PREFIX) :].rstrip()
    password = None
    m = _DENIED_PASSWORD.search(body, max(0, len(body) - 30))
    if m is not None:
        password, body = m[1], body[: m.start()]
    user, sep, host = body.rpartition("'@'")
    if not sep or not host.endswith("'") or "'" in host[:-1]:
        return None
    return user, host[:-1], password


_ERRLOG = re.compile(
    rf"(?P<ts>{_TIME}|\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d)\s+(?:(?P<id>\d+) )?"
    r"\[(?P<level>Note|Warning|ERROR|Error|System)\](?: \[MY-\d+\] \[\w+\])? (?P<msg>.*)"
)
_MAX_LINES: Final = 10_000
MAX_THREADS: Final = 65_536
_STATEMENTS: Final = frozenset({"Query", "Execute", "Prepare"})


def sniff(line: str) -> bool:
    """A general-log header or entry, or an error-log line with ``[Note]``/``[Warning]``..."""
    if _HEADER.match(line):
        return True
    m = _ENTRY.match(line)
    if m is not None and (m["ts"] is not None or line[:1] in " \t"):
        return True
    return _ERRLOG.match(line) is not None


def assembler(ctx: StreamContext) -> MysqlAssembler:
    """A record assembler for one MySQL general or error log stream."""
    return MysqlAssembler(ctx)


class MysqlAssembler:
    """Holds the current entry until the next starts; remembers each thread's login."""

    __slots__ = ("_ctx", "_held_cmd", "_last_time", "_lines", "_stamped", "_start", "_threads")

    def __init__(self, ctx: StreamContext) -> None:
        self._ctx = ctx
        self._lines: list[str] = []
        self._start: int | None = None
        # The command of the entry started last ("" for headers and error lines); after a
        # record cut at _MAX_LINES it still says what the lines that follow continue.
        self._held_cmd = ""
        # Whether the stream's first entry had an ISO (5.7+) time column, so every entry has
        # one. Decided once: a later line, which may be a client's text, cannot change it.
        self._stamped: bool | None = None
        self._last_time = ctx.reference_us
        self._threads: dict[str, tuple[str, str, str]] = {}  # least recently used first

    def pending_since(self) -> int | None:
        """Start offset of the held entry."""
        return self._start

    def feed(self, line: str, start: int) -> list[Event]:
        """Take one line; return the entry it completes."""
        starts = _HEADER.match(line) is not None or _ERRLOG.match(line) is not None
        cmd = ""
        if not starts:
            m = _ENTRY.match(line)
            if m is not None:
                cmd = m["cmd"]
                if m["ts"] is not None:
                    starts = True
                    if self._stamped is None:
                        self._stamped = "T" in m["ts"]
                elif line[:1] in " \t":
                    if self._stamped is None:
                        self._stamped = False
                    starts = not self._stamped and not (
                        cmd == "Connect" and self._held_cmd in _STATEMENTS
                    )
        if starts:
            if (
                self._lines
                and "Version: " in self._lines[0]
                and line.startswith(("Tcp port:", "Time "))
                and _HEADER.match(line)
            ):
                self._lines.append(line)  # the header's own second and third lines
                return []
            out = self.flush()
            self._lines, self._start, self._held_cmd = [line], start, cmd
            return out
        if self._start is not None:
            self._lines.append(line)
            return self.flush() if len(self._lines) >= _MAX_LINES else []
        event = unparsed(line, self._last_time, host=self._ctx.host, reason="no_parser_matched")
        return [self._finish(event, [line], start)]

    def flush(self) -> list[Event]:
        """Emit the held entry."""
        if self._start is None:
            return []
        lines, start = self._lines, self._start
        self._lines, self._start = [], None
        try:
            event = self._event(lines)
        except Exception as exc:  # the held lines are already out of the buffer: keep them
            event = unparsed(
                "\n".join(lines), self._ctx.reference_us, host=self._ctx.host,
                reason="parser_error",
            )  # fmt: skip
            event.details["error"] = type(exc).__name__
        return [self._finish(event, lines, start)]

    def _finish(self, event: Event, lines: list[str], start: int) -> Event:
        event.raw = "\n".join(lines)
        event.collector_offset = start
        event.collector_parser = NAME
        event.target_host = event.target_host or self._ctx.host
        return event

    def _time(self, text: str | None) -> int:
        if text:
            stamp = _parse_time(text, self._ctx)
            if stamp is not None:
                self._last_time = stamp
        return self._last_time

    def _event(self, lines: list[str]) -> Event:
        first = lines[0]
        if _HEADER.match(first):
            e = _base(self._ctx.reference_us, "db.server_start")
            e.details = {"message": "\n".join(lines)}
            return e
        err = _ERRLOG.match(first)
        if err is not None:
            return self._error_line(err, "\n".join([err["msg"], *lines[1:]]))
        m = _ENTRY.match(first)
        assert m is not None  # feed only holds lines that start an entry
        time = self._time(m["ts"])
        thread, cmd = m["id"], m["cmd"]
        arg = "\n".join([m["arg"], *lines[1:]]).rstrip()
        details: dict[str, DetailValue] = {"thread_id": thread, "command": cmd}
        known = self._threads.get(thread)
        user, host, db = known or ("", "", "")
        e = _base(time, "db.command")
        if cmd == "Connect":
            denied = _denied(arg)
            if denied is not None:
                return _access_denied(e, denied, details)
            c = _CONNECT.fullmatch(arg)
            if c is not None:
                user, host, db = c["user"], c["host"], c["db"] or ""
                known = (user, host, db)
                e.action, e.outcome, e.category = "db.login", "success", "authentication"
                if c["via"]:
                    details["via"] = c["via"]
                if c["proxy"]:
                    details["proxy_user"] = c["proxy"]
            else:
                details["argument"] = arg
        elif cmd == "Init DB":
            db = arg
            if known is not None:
                known = (user, host, db)
            e.action, e.outcome = "db.query", "success"
            details["statement"] = f"USE {arg}"
            details["command_tag"] = "USE"
        elif cmd in {"Query", "Execute", "Prepare"}:
            tag = command_tag(arg)
            e.action = "db.prepare" if cmd == "Prepare" else "db.ddl" if is_ddl(tag) else "db.query"
            e.outcome = "success"
            details["statement"] = arg
            if tag is not None:
                details["command_tag"] = tag
        elif cmd == "Quit":
            known = None  # the thread is forgotten
            e.action, e.outcome, e.category = "db.logout", "success", "session"
        elif arg:
            details["argument"] = arg
        self._remember(thread, known)
        if user:
            e.actor_name, e.actor_type = user, "user"
        if db:
            e.target_resource, e.target_resource_type = db, "database"
        _source(e, host)
        e.details = details
        return e

    def _remember(self, thread: str, known: tuple[str, str, str] | None) -> None:
        """Store (or forget) a thread's login as its most recently used; evict beyond the cap."""
        threads = self._threads
        threads.pop(thread, None)
        if known is None:
            return
        threads[thread] = known
        if len(threads) > MAX_THREADS:
            del threads[next(iter(threads))]

    def _error_line(self, m: re.Match[str], msg: str) -> Event:
        e = _base(self._time(m["ts"]), "db.message")
        details: dict[str, DetailValue] = {"level": m["level"]}
        if m["id"]:
            details["thread_id"] = m["id"]
        denied = _denied(msg)
        if denied is not None:
            return _access_denied(e, denied, details)
        details["message"] = msg
        e.details = details
        return e


def _base(time: int, action: str) -> Event:
    return Event(time=time, category="database", action=action, target_system="mysql")


def _access_denied(
    e: Event, denied: tuple[str, str, str | None], details: dict[str, DetailValue]
) -> Event:
    """``Access denied for user 'u'@'h' (using password: YES|NO)``: a refused login."""
    user, host, answer = denied
    tried = answer == "YES"  # "using password: YES": a password was offered, and was wrong
    e.action, e.outcome, e.category, e.severity = "db.login", "failure", "authentication", "low"
    e.reason = "bad_password" if tried else "denied"
    e.actor_name, e.actor_type = user, "user"
    if answer:
        details["using_password"] = tried
    _source(e, host)
    e.details = details
    return e


def _source(e: Event, host: str) -> None:
    if host:
        e.source_ip, e.source_host = ip_or_hostname(host)


def _parse_time(text: str, ctx: StreamContext) -> int | None:
    try:
        if "T" in text:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
        elif "-" in text:
            dt = datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
        else:
            date, clock = text.split(None, 1)
            dt = datetime.strptime(f"{date} {clock.strip():0>8}", "%y%m%d %H:%M:%S")
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=ctx.tz)
    return datetime_to_micros(dt.astimezone(timezone(timedelta(0))))
