"""Showing events to a person or a program without letting log text take over the terminal.

Log lines are attacker-controlled: a user name can carry ANSI escapes that rewrite the screen,
or a leading ``=`` that a spreadsheet would run as a formula. Every string from an event passes
through :func:`safe` before a terminal sees it, and through :func:`csv_cell` before CSV does.
JSON is safe by construction (control characters are escaped by the encoder).
"""

from __future__ import annotations

import csv
import re
import sys
from collections.abc import Callable, Iterable
from typing import IO, Any, Final

import orjson
from rich.console import Console
from rich.table import Table
from rich.text import Text

from keeptrail.event import Event, format_time, to_document
from keeptrail.export.ecs import to_ecs
from keeptrail.export.ocsf import to_ocsf

OUTPUT_FORMATS: Final = ("table", "json", "jsonl", "csv", "ocsf", "ecs")
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def safe(value: object) -> str:
    """Printable text: control and bidi characters shown as ``\\xNN`` / ``\\uNNNN`` escapes."""
    text = "" if value is None else str(value)
    return _CONTROL.sub(_escape, text)


def _escape(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def csv_cell(value: object) -> str:
    """A CSV cell that a spreadsheet shows as text, never evaluates (OWASP CSV injection)."""
    text = "" if value is None else str(value)
    # Look past leading blanks and control characters: some writers (Typer's echo to a pipe)
    # strip an ESC, and spreadsheets skip leading spaces, either of which would uncover a formula.
    start = _CSV_LEADING_NOISE.match(text)
    first = text[start.end() if start else 0 :][:1]
    if first in ("=", "+", "-", "@") or text[:1] in ("\t", "\r"):
        return "'" + text
    return text


# Blanks, control characters and ANSI escape sequences (which click strips on the way to a pipe).
_CSV_LEADING_NOISE: Final = re.compile(r"(?:\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-_]|[\x00-\x20\x7f])*")


def summary(e: Event) -> str:
    """The one-line gist of an event for tables: what was run or changed, or how."""
    d = e.details
    for name in ("command", "query"):
        if d.get(name) is not None:
            return str(d[name])
    if e.target_resource:
        what = f"{e.target_resource_type or 'resource'} {e.target_resource}"
        extra = d.get("change") or d.get("member") or d.get("group")
        return f"{what} ({extra})" if extra is not None else what
    if e.category == "unparsed":
        return e.raw
    if e.actor_auth_method:
        key = d.get("key_type")
        return f"{e.actor_auth_method} {key}" if key else e.actor_auth_method
    return e.raw


CSV_FIELDS: Final = (
    "time",
    "target.host",
    "category",
    "action",
    "outcome",
    "reason",
    "actor.name",
    "actor.effective_user",
    "source.ip",
    "source.port",
    "raw",
)


def flat_row(e: Event) -> dict[str, Any]:
    """The :data:`CSV_FIELDS` of an event, for CSV in the CLI and the export API."""
    return {
        "time": format_time(e.time),
        "target.host": e.target_host,
        "category": e.category,
        "action": e.action,
        "outcome": e.outcome,
        "reason": e.reason,
        "actor.name": e.actor_name,
        "actor.effective_user": e.actor_effective_user,
        "source.ip": e.source_ip,
        "source.port": e.source_port,
        "raw": e.raw,
    }


_LINE_EXPORTS: Final[dict[str, Callable[[Event], dict[str, Any]]]] = {
    "jsonl": to_document,
    "ocsf": to_ocsf,
    "ecs": to_ecs,
}


def write_events(events: Iterable[Event], fmt: str, out: IO[str] | None = None) -> int:
    """Write events in one of :data:`OUTPUT_FORMATS`; returns how many were written.

    ``ocsf`` and ``ecs`` are JSON lines, one document per event, like ``jsonl``.
    """
    out = out or sys.stdout
    count = 0
    if fmt in _LINE_EXPORTS:
        render = _LINE_EXPORTS[fmt]
        for e in events:
            out.write(orjson.dumps(render(e)).decode() + "\n")
            count += 1
    elif fmt == "json":
        docs = [to_document(e) for e in events]
        out.write(orjson.dumps(docs, option=orjson.OPT_INDENT_2).decode() + "\n")
        count = len(docs)
    elif fmt == "csv":
        writer = csv.writer(out)
        writer.writerow(CSV_FIELDS)
        for e in events:
            row = flat_row(e)
            writer.writerow([csv_cell(row[k]) for k in CSV_FIELDS])
            count += 1
    else:
        table = event_table(list(events))
        count = table.row_count
        make_console(out).print(table)
    return count


def make_console(out: IO[str] | None = None) -> Console:
    """A console that is wide enough for event tables even when output is not a terminal."""
    console = Console(file=out, highlight=False, soft_wrap=False)
    if not console.is_terminal:
        console.width = 160
    return console


def event_table(events: list[Event], title: str | None = None) -> Table:
    """A Rich table of events; every cell is plain :class:`Text`, never markup."""
    table = Table(title=title, show_lines=False, header_style="bold")
    for name in ("time (UTC)", "host", "action", "outcome", "actor", "source", "what"):
        table.add_column(name, overflow="fold", no_wrap=name.startswith("time"))
    for e in events:
        outcome_style = {"failure": "red", "success": "green"}.get(e.outcome, "")
        actor = e.actor_name or ""
        if e.actor_effective_user:
            actor = f"{actor} → {e.actor_effective_user}"
        table.add_row(
            Text(format_time(e.time)[:19].replace("T", " ")),
            Text(safe(e.target_host)),
            Text(safe(e.action)),
            Text(safe(e.outcome + (f" ({e.reason})" if e.reason else "")), style=outcome_style),
            Text(safe(actor)),
            Text(safe(e.source_ip or e.source_host or "")),
            Text(safe(summary(e))[:160]),
        )
    return table


def count_table(title: str, headers: tuple[str, ...], rows: Iterable[tuple[Any, ...]]) -> Table:
    """A small counts table (stats, demo) with every cell escaped."""
    table = Table(title=title, header_style="bold", title_justify="left")
    for i, h in enumerate(headers):
        table.add_column(h, justify="right" if i == len(headers) - 1 else "left")
    for row in rows:
        table.add_row(*(Text(safe(v)) for v in row))
    return table
