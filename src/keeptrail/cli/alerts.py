"""``keeptrail alerts``: list, show, acknowledge and resolve the alerts the engine raised.

Alerts live in ``<data-dir>/detect.db`` (with ``--store postgresql://…``, in that database,
shared by every server); each acknowledgement or resolution is also appended to
the event store (``alert.acknowledged`` / ``alert.resolved``, actor = who) so it is in the ledger.
Alert text comes from logs: everything printed passes through :func:`keeptrail.cli.output.safe`.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.table import Table
from rich.text import Text

from keeptrail.cli.common import DataDir, StoreUrl, store_for
from keeptrail.cli.output import make_console, safe
from keeptrail.config import default_data_dir
from keeptrail.detect.alert_actions import check_comment, transition_event
from keeptrail.detect.alerts import STATUSES, Alert, AlertStore, open_alerts
from keeptrail.errors import UserError
from keeptrail.event import format_time
from keeptrail.notify.outbox import deliveries_of
from keeptrail.query.timerange import parse_time_bound
from keeptrail.server.audit import local_actor
from keeptrail.state_db import DETECT_DB, is_postgres_url

alerts_app = typer.Typer(help="Alerts: list, show, acknowledge, resolve.", no_args_is_help=True)

Comment = Annotated[str, typer.Option("--comment", "-m", help="Why (required, recorded).")]
By = Annotated[str | None, typer.Option("--by", help="Who is acting [default: the login name].")]


def _open(data_dir: Path | None, store_url: str | None) -> tuple[Path, str | None, AlertStore]:
    """The data directory, the PostgreSQL URL (if the store is one) and the alert store."""
    directory = data_dir or default_data_dir()
    url = store_url or os.environ.get("KEEPTRAIL_STORE")
    if not is_postgres_url(url):
        if not (directory / DETECT_DB).exists():
            raise UserError(f"no alerts in {directory}: the detection engine has not run there yet")
        url = None
    return directory, url, open_alerts(directory, url)


@alerts_app.command("list")
def list_alerts(
    status: Annotated[
        str | None, typer.Option(help=f"Only alerts in this status: {', '.join(STATUSES)}.")
    ] = None,
    rule: Annotated[str | None, typer.Option(help="Only alerts of this rule id.")] = None,
    since: Annotated[
        str | None, typer.Option(help="Last seen after: 24h, 7d, 2024-01-31, a timestamp.")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many (newest first).")] = 50,
    output_format: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table",
    data_dir: DataDir = None,
    store_url: StoreUrl = None,
) -> None:
    """List alerts, most recently seen first.

    Example: keeptrail alerts list --status open --since 24h
    """
    if output_format not in ("table", "json"):
        raise UserError("--format must be table or json")
    lo = parse_time_bound(since, now_us=_now()) if since else None
    _, _, store = _open(data_dir, store_url)
    try:
        alerts = store.list(status=status, rule_id=rule, since=lo, limit=limit)
    finally:
        store.close()
    if output_format == "json":
        typer.echo(orjson.dumps([a.to_dict() for a in alerts], option=orjson.OPT_INDENT_2).decode())
        return
    table = Table(header_style="bold", title=f"{len(alerts)} alert(s)", title_justify="left")
    for column in ("id", "status", "severity", "rule", "key", "count", "last seen (UTC)", "why"):
        table.add_column(column, overflow="fold")
    for a in alerts:
        key = ", ".join(f"{k}={v}" for k, v in a.key.items()) or "-"
        cells = (
            a.id,
            a.status,
            a.severity,
            a.rule_id,
            key,
            str(a.count),
            format_time(a.last_time)[:19],
            a.reason,
        )
        table.add_row(*(Text(safe(c)) for c in cells))
    make_console().print(table)


@alerts_app.command("show")
def show(
    alert_id: Annotated[str, typer.Argument(help="The alert id (from alerts list).")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    data_dir: DataDir = None,
    store_url: StoreUrl = None,
) -> None:
    """One alert: rule, key, why it fired, its evidence events and its history."""
    directory, url, store = _open(data_dir, store_url)
    try:
        alert = store.get(alert_id)
    finally:
        store.close()
    if alert is None:
        raise UserError(f"no alert with id {alert_id!r}")
    deliveries = deliveries_of(directory, alert.id, url)
    if as_json:
        doc = {**alert.to_dict(), "deliveries": deliveries}
        typer.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
        return
    make_console().print(alert_text(alert, deliveries), markup=False)


def alert_text(alert: Alert, deliveries: list[dict[str, object]] | None = None) -> str:
    """The ``alerts show`` page, every line escaped."""
    key = ", ".join(f"{k}={v}" for k, v in alert.key.items()) or "-"
    lines = [
        f"alert     {alert.id}",
        f"rule      {alert.rule_id}: {alert.title}",
        f"severity  {alert.severity}    status {alert.status}",
        f"key       {key}",
        f"events    {alert.count}, {format_time(alert.first_time)} .. "
        f"{format_time(alert.last_time)}",
        f"why       {alert.reason}",
        f"tags      {' '.join(alert.tags) or '-'}",
        f"ledger    alert.raised event {alert.event_id or '(not recorded yet)'}",
        f"evidence  ({len(alert.evidence)} kept)",
    ]
    for ev in alert.evidence:
        lines.append(f"  {format_time(ev.time)}  {ev.event_id}  {ev.summary}")
    lines.append("history")
    lines.append(f"  {format_time(alert.created_at)}  open  (raised by the engine)")
    for h in alert.history:
        lines.append(f"  {format_time(h.at)}  {h.status}  by {h.by}: {h.comment}")
    if deliveries:
        lines.append("notifications")
        for d in deliveries:
            error = f": {d['last_error']}" if d["last_error"] else ""
            lines.append(f"  {d['sink']}  {d['state']} after {d['attempts']} attempt(s){error}")
    return "\n".join(safe(line) for line in lines)


def _transition(
    alert_id: str,
    status: str,
    comment: str,
    by: str | None,
    data_dir: Path | None,
    store_url: str | None,
) -> None:
    text = check_comment(comment)
    who = (by or local_actor()).strip()
    if not who:
        raise UserError("--by must not be empty")
    directory, url, alerts = _open(data_dir, store_url)
    try:
        before = alerts.get(alert_id)
        if before is None:
            raise UserError(f"no alert with id {alert_id!r}")
        after = alerts.transition(alert_id, status, by=who, comment=text)
    finally:
        alerts.close()
    store = store_for(directory, store=url)
    try:
        store.append([transition_event(after, before.status, by=who, comment=text)])
    finally:
        store.close()
    typer.echo(safe(f"alert {after.id} is now {after.status} (by {who})"))


@alerts_app.command("ack")
def ack(
    alert_id: Annotated[str, typer.Argument(help="The alert id.")],
    comment: Comment,
    by: By = None,
    data_dir: DataDir = None,
    store_url: StoreUrl = None,
) -> None:
    """Acknowledge an alert: someone is on it.

    Example: keeptrail alerts ack 0193... --comment "checking with the DBA team"
    """
    _transition(alert_id, "acknowledged", comment, by, data_dir, store_url)


@alerts_app.command("resolve")
def resolve(
    alert_id: Annotated[str, typer.Argument(help="The alert id.")],
    comment: Comment,
    by: By = None,
    data_dir: DataDir = None,
    store_url: StoreUrl = None,
) -> None:
    """Resolve an alert; a new firing for the same key afterwards opens a new alert.

    Example: keeptrail alerts resolve 0193... --comment "pentest, ticket SEC-42"
    """
    _transition(alert_id, "resolved", comment, by, data_dir, store_url)


def _now() -> int:
    return time.time_ns() // 1000
