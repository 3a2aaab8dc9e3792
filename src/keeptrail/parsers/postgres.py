"""PostgreSQL server logs: stderr (any ``log_line_prefix``), csvlog, jsonlog, and via syslog.

One stream may mix the three file layouts (a csvlog file that starts with a stderr line, as
``pg_ctl`` leaves them), so each record is recognised by its first line:

* ``{`` — jsonlog (PostgreSQL 15+), CloudNativePG's wrapped records, Cloud SQL exports;
* a timestamp followed by ``,`` (or a quoted one) — csvlog; the record is complete when its
  double quotes balance, so quoted newlines in statements stay inside it;
* anything the prefix matches — stderr. The record is held until the next one starts: the
  lines that follow without a prefix continue its message (multi-line statements), and the
  ``DETAIL``/``HINT``/``STATEMENT``/``CONTEXT`` lines of the same process belong to it.

Through syslog (``postgres[pid]: [3-1] ...``) every line arrives on its own; :func:`parse` is
the syslog message parser, and lines ``[N-2]``, ``[N-3]``... (continuations) become
``db.continuation`` events that keep the text next to its statement's event.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from typing import Final

from keeptrail.event import DetailValue, Event, unparsed
from keeptrail.parsers.base import StreamContext, SyslogMessage
from keeptrail.parsers.json_line import json_object
from keeptrail.parsers.postgres_message import PgRecord, to_event
from keeptrail.parsers.postgres_prefix import FOLLOWERS, Clock, compile_prefix, split_auto

NAME: Final = "postgres"
PROGRAMS: Final = ("postgres", "postgresql", "postmaster")

_MAX_LINES: Final = 10_000
_CSV_HEAD = re.compile(r'"?\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?(?: [\w+-]+)?"?,')
_SNIFF_STDERR = re.compile(
    r"(?:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d|\d{10}\.\d{3})[^\n]{0,300}?(?<![^\s:\]])"
    r"(?:LOG|ERROR|FATAL|PANIC|WARNING|NOTICE|INFO|DEBUG[1-5]|DETAIL|HINT|STATEMENT): {1,2}\S"
)
_MYSQL_LEVEL = re.compile(r"[^\n]{0,60}?\[(?:Note|Warning|ERROR|System|Error)\]")
_SYSLOG_LINE = re.compile(r"\[(\d+)-(\d+)\] ?(.*)", re.DOTALL)


@dataclass(frozen=True, slots=True)
class PostgresConfig:
    """``prefix`` is the server's ``log_line_prefix`` (``None``: recognise common layouts)."""

    prefix: str | None = None


def sniff(line: str) -> bool:
    """A stderr, csvlog or jsonlog first line (not a syslog line, not another JSON format)."""
    if line.startswith("{"):
        return '"error_severity"' in line or ('"textPayload"' in line and "cloudsql" in line)
    if not line[:1].isdigit() and not line.startswith('"'):
        return False
    if _CSV_HEAD.match(line) is not None:
        return True
    return _SNIFF_STDERR.match(line) is not None and _MYSQL_LEVEL.match(line) is None


def assembler(ctx: StreamContext, config: PostgresConfig | None = None) -> PostgresAssembler:
    """A record assembler for one PostgreSQL log stream."""
    return PostgresAssembler(ctx, config or PostgresConfig())


class PostgresAssembler:
    """Holds one stderr or csvlog record until it is complete (see the module docstring)."""

    __slots__ = (
        "_clock",
        "_csv_open",
        "_ctx",
        "_head",
        "_kind",
        "_lines",
        "_more",
        "_prefix",
        "_start",
    )

    def __init__(self, ctx: StreamContext, config: PostgresConfig) -> None:
        self._ctx = ctx
        self._clock = Clock(ctx.tz)
        self._prefix = compile_prefix(config.prefix) if config.prefix else None
        self._lines: list[str] = []
        self._start: int | None = None
        self._kind = ""
        self._csv_open = False
        self._head: dict[str, str | None] = {}
        # Continuation lines per head field, joined once when the record is built: joining
        # each line as it comes would copy the text so far every time (quadratic).
        self._more: dict[str, list[str]] = {}

    def pending_since(self) -> int | None:
        """Start offset of the held record, if any."""
        return self._start

    def flush(self) -> list[Event]:
        """Emit the held record as it is."""
        if self._start is None:
            return []
        lines, start, kind, head, more = (
            self._lines, self._start, self._kind, self._head, self._more,
        )  # fmt: skip
        self._lines, self._start, self._kind, self._head, self._more = [], None, "", {}, {}
        self._csv_open = False
        for key, parts in more.items():
            head[key] = "\n".join([head[key] or "", *parts])
        try:
            event = self._csv_event(lines) if kind == "csv" else self._stderr_event(head, lines)
        except Exception as exc:  # the held lines are already out of the buffer: keep them
            event = _failed(lines, self._ctx, exc)
        return [self._finish(event, lines, start)]

    def feed(self, line: str, start: int) -> list[Event]:
        """Take one line; return the records it completes."""
        if self._kind == "csv" and self._csv_open:
            self._lines.append(line)
            if line.count('"') % 2:
                self._csv_open = False
                return self.flush()
            return self._cap()
        first = line[:1]
        if first == "{":
            out = self.flush()
            try:
                event = self._json_event(line)
            except Exception as exc:  # never lose the record flushed just before
                event = _failed([line], self._ctx, exc)
            out.append(self._finish(event, [line], start))
            return out
        if (first == '"' or (first.isdigit() and "," in line[19:34])) and _CSV_HEAD.match(line):
            out = self.flush()
            self._lines, self._start, self._kind = [line], start, "csv"
            if line.count('"') % 2:
                self._csv_open = True
                return out
            out.extend(self.flush())
            return out
        head = self._split(line)
        if head is not None:
            sev = head["sev"] or ""
            if sev in FOLLOWERS and self._kind == "stderr" and self._same_process(head):
                self._lines.append(line)
                key = (
                    "detail"
                    if sev == "DETAIL"
                    else "statement"
                    if sev in {"STATEMENT", "QUERY"}
                    else ""
                )
                if key and key not in self._head:
                    self._head[key] = head["msg"]
                self._head["_last"] = key
                return self._cap()
            out = self.flush()
            self._lines, self._start, self._kind, self._head = [line], start, "stderr", head
            self._head["_last"] = "msg"
            return out
        if self._start is not None and self._kind == "stderr":
            self._lines.append(line)
            last = self._head.get("_last") or ""
            if last in self._head:
                more = self._more.get(last)
                if more is None:
                    self._more[last] = [line]
                else:
                    more.append(line)
            return self._cap()
        out = self.flush()
        event = unparsed(
            line, self._ctx.reference_us, host=self._ctx.host, reason="no_parser_matched"
        )
        out.append(self._finish(event, [line], start))
        return out

    # --- helpers -----------------------------------------------------------------------------

    def _split(self, line: str) -> dict[str, str | None] | None:
        if self._prefix is not None:
            m = self._prefix.match(line)
            if m is None:
                return None
            fields = m.groupdict()
            fields["ts"] = fields.get("m") or fields.get("t") or fields.get("n")
            return fields
        if not line[:1].isdigit():
            return None
        fields_auto = split_auto(line)
        if fields_auto is None or fields_auto["ts"] is None:
            return None
        return fields_auto

    def _same_process(self, head: dict[str, str | None]) -> bool:
        pid, held = head.get("p"), self._head.get("p")
        return pid is None or held is None or pid == held

    def _cap(self) -> list[Event]:
        return self.flush() if len(self._lines) >= _MAX_LINES else []

    def _finish(self, event: Event, lines: list[str], start: int) -> Event:
        event.raw = "\n".join(lines)
        event.collector_offset = start
        event.collector_parser = NAME
        if event.target_host is None:
            event.target_host = self._ctx.host
        return event

    def _time(self, text: str | None) -> int:
        stamp = self._clock.parse(text) if text else None
        return self._ctx.reference_us if stamp is None else stamp

    def _stderr_event(self, head: dict[str, str | None], lines: list[str]) -> Event:
        rec = PgRecord(
            time=self._time(head.get("ts")),
            severity=head.get("sev") or "LOG",
            message=head.get("msg") or "",
            user=head.get("u"),
            database=head.get("d"),
            host=head.get("h"),
            port=head.get("port"),
            app=head.get("a"),
            pid=head.get("p"),
            session=head.get("c"),
            sql_state=head.get("e"),
            detail=head.get("detail"),
            statement=head.get("statement"),
        )
        return to_event(rec)

    def _csv_event(self, lines: list[str]) -> Event:
        raw = "\n".join(lines)
        try:
            row = next(csv.reader([raw + "\n"] if len(lines) == 1 else _with_ends(lines)))
        except (csv.Error, StopIteration):
            row = []
        if len(row) < 14:
            return unparsed(raw, self._ctx.reference_us, host=self._ctx.host, reason="bad_csvlog")
        row += [""] * (23 - len(row))
        host, _, port = row[4].rpartition(":") if row[4][-1:].isdigit() else (row[4], "", "")
        rec = PgRecord(
            time=self._time(row[0]),
            severity=row[11],
            message=row[13],
            user=row[1],
            database=row[2],
            host=host,
            port=port or None,
            app=row[22] or None,
            pid=row[3] or None,
            session=row[5] or None,
            sql_state=row[12],
            detail=row[14] or None,
            statement=row[19] or None,
        )
        return to_event(rec)

    def _json_event(self, line: str) -> Event:
        doc = json_object(line)
        if doc is None:
            return unparsed(line, self._ctx.reference_us, host=self._ctx.host, reason="bad_json")
        if isinstance(doc.get("record"), dict):  # CloudNativePG: csvlog columns as keys
            r = doc["record"]
            host, _, port = str(r.get("connection_from") or "").rpartition(":")
            if not port.isdigit():
                host, port = str(r.get("connection_from") or ""), ""
            doc = {
                "timestamp": r.get("log_time"), "user": r.get("user_name"),
                "dbname": r.get("database_name"), "pid": r.get("process_id"),
                "remote_host": host, "remote_port": port, "session_id": r.get("session_id"),
                "error_severity": r.get("error_severity"), "state_code": r.get("sql_state_code"),
                "message": r.get("message"), "detail": r.get("detail"),
                "statement": r.get("query"), "application_name": r.get("application_name"),
            }  # fmt: skip
        elif isinstance(doc.get("textPayload"), str):  # Cloud SQL: a stderr line, no timestamp
            fields = split_auto(doc["textPayload"])
            stamp = str(doc.get("timestamp") or "").replace("T", " ").replace("Z", " UTC")
            if fields is None:  # each continuation line is an entry of its own
                return _continuation(self._time(stamp), None, doc["textPayload"], "")
            doc = {
                "timestamp": stamp, "user": fields.get("u"), "dbname": fields.get("d"),
                "pid": fields.get("p"), "remote_host": fields.get("h"),
                "error_severity": fields["sev"], "message": fields["msg"],
            }  # fmt: skip
        if not isinstance(doc.get("message"), str) or not isinstance(
            doc.get("error_severity"), str
        ):
            # JSON, but not a server record (CloudNativePG's operator messages, for one)
            return unparsed(
                line, self._ctx.reference_us, host=self._ctx.host, reason="no_parser_matched"
            )

        def text(key: str) -> str | None:
            value = doc.get(key)
            return None if value is None else str(value)

        rec = PgRecord(
            time=self._time(text("timestamp")),
            severity=doc["error_severity"],
            message=doc["message"],
            user=text("user"),
            database=text("dbname"),
            host=text("remote_host"),
            port=text("remote_port"),
            app=text("application_name"),
            pid=text("pid"),
            session=text("session_id"),
            sql_state=text("state_code"),
            detail=text("detail"),
            statement=text("statement"),
        )
        return to_event(rec)


def _with_ends(lines: list[str]) -> list[str]:
    return [line + "\n" for line in lines]


def _continuation(time: int, host: str | None, text: str, line: str) -> Event:
    """A line that continues the previous message of its process, delivered on its own."""
    details: dict[str, DetailValue] = {"text": text}
    if line:
        details["line"] = line
    return Event(
        time=time,
        category="database",
        action="db.continuation",
        target_host=host,
        target_system="postgres",
        details=details,
    )


def parse(msg: SyslogMessage) -> Event | None:
    """A ``postgres[pid]: [N-M] PREFIX SEVERITY:  MESSAGE`` syslog message, or ``None``."""
    text = msg.message
    m = _SYSLOG_LINE.match(text)
    if m is not None:
        if m[2] != "1":
            return _continuation(msg.time, msg.host, m[3], f"{m[1]}-{m[2]}")
        text = m[3]
    fields = split_auto(text)
    if fields is None or fields["sev"] is None:
        return None
    rec = PgRecord(
        time=msg.time,
        severity=fields["sev"],
        message=fields["msg"] or "",
        user=fields.get("u"),
        database=fields.get("d"),
        host=fields.get("h"),
        port=fields.get("port"),
        app=fields.get("a"),
        pid=str(msg.pid) if msg.pid is not None else fields.get("p"),
        target_host=msg.host,
    )
    return to_event(rec)


def _failed(lines: list[str], ctx: StreamContext, exc: Exception) -> Event:
    """An ``unparsed`` event for a record a builder could not read: its lines survive."""
    event = unparsed("\n".join(lines), ctx.reference_us, host=ctx.host, reason="parser_error")
    event.details["error"] = type(exc).__name__
    return event
