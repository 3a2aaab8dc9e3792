"""``keeptrail review``: access review campaigns (start, list, show, decide, close, export).

Each command opens the review tables in ``<data-dir>/permissions.db`` and, for the steps that
change something (start, decide, close), the event store too: the step's ``review.*`` event is
appended (a ledger leaf) before the campaign tables record it. The actor of those events is
the local user who ran the command; ``--by`` names the reviewer when someone records a
decision for them, and must be one of the campaign's reviewers.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Final

import orjson
import typer
from rich.table import Table
from rich.text import Text

from keeptrail.cli.common import DataDir, store_for
from keeptrail.cli.output import make_console, safe
from keeptrail.config import default_data_dir
from keeptrail.errors import UserError
from keeptrail.event import Event, format_time
from keeptrail.permissions.findings_config import DAY_US, parse_window
from keeptrail.permissions.reviews import Actor, ReviewService, progress
from keeptrail.permissions.reviews_export import build_export, to_csv
from keeptrail.permissions.reviews_store import Campaign, open_reviews
from keeptrail.permissions.snapshots import open_snapshots
from keeptrail.permissions.usage import UsageReader
from keeptrail.server import audit

review_app = typer.Typer(
    help="Access review campaigns: keep or revoke each entitlement, with evidence.",
    no_args_is_help=True,
)
EXPORT_FORMATS: Final = ("json", "csv")


@contextmanager
def _service(data_dir: Path | None) -> Iterator[ReviewService]:
    directory = data_dir or default_data_dir()
    reviews = open_reviews(directory)
    store = store_for(directory)

    def append(events: Sequence[Event]) -> None:
        store.append(events)

    try:
        yield ReviewService(reviews, append, Actor(audit.local_actor()))
    finally:
        store.close()
        reviews.close()


@review_app.command("start")
def start(
    scope: Annotated[
        str, typer.Option(help="Which entitlements, e.g. 'system:linux:* AND privileged:true'.")
    ],
    reviewer: Annotated[
        list[str], typer.Option(help="Who decides (repeatable, or comma-separated).")
    ],
    name: Annotated[str | None, typer.Option(help="A title for the campaign.")] = None,
    due: Annotated[str | None, typer.Option(help="Deadline: 30d or 2026-12-31.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Start a campaign over the entitlements of the latest snapshots that SCOPE selects.

    Example: keeptrail review start --scope 'privileged:true' --reviewer alice --due 30d
    """
    directory = data_dir or default_data_dir()
    snapshots = open_snapshots(directory)
    try:
        latest = snapshots.latest_per_system()
    finally:
        snapshots.close()
    names = [n for r in reviewer for n in r.split(",")]
    with _service(directory) as service:
        campaign, items = service.start(latest, scope=scope, reviewers=names, name=name, due=due)
    typer.echo(f"{campaign.id}")
    typer.echo(
        f"started {safe(campaign.name)!s}: {len(items)} entitlements for "
        f"{safe(', '.join(campaign.reviewers))} (ledger event {campaign.start_event})",
        err=True,
    )


@review_app.command("list")
def list_campaigns(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    data_dir: DataDir = None,
) -> None:
    """List campaigns, newest first, with their progress.

    Example: keeptrail review list
    """
    with open_reviews(data_dir or default_data_dir()) as reviews:
        rows = [(c, progress(reviews.items(c))) for c in reviews.campaigns()]
    if as_json:
        data = [{**c.to_json(), "progress": p.to_json()} for c, p in rows]
        typer.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
        return
    table = Table(header_style="bold")
    for column in ("id", "name", "state", "decided", "reviewers", "due", "created"):
        table.add_column(column, overflow="fold")
    for c, p in rows:
        table.add_row(
            c.id,
            Text(safe(c.name)),
            c.state,
            f"{p.decided}/{p.total}",
            Text(safe(", ".join(c.reviewers))),
            format_time(c.due)[:10] if c.due else "",
            format_time(c.created_at)[:16],
        )
    make_console().print(table)


@review_app.command("show")
def show(
    campaign: Annotated[str, typer.Argument(help="Campaign id (or a unique prefix).")],
    undecided: Annotated[bool, typer.Option(help="Only items still to decide.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    data_dir: DataDir = None,
) -> None:
    """A campaign's items and decisions, and its progress (decided/total).

    Example: keeptrail review show 0193 --undecided
    """
    with open_reviews(data_dir or default_data_dir()) as reviews:
        c = reviews.get(campaign)
        items = reviews.items(c)
    p = progress(items)
    shown = [i for i in items if not undecided or i.decision is None]
    if as_json:
        data = {**c.to_json(), "progress": p.to_json(), "items": [i.to_json() for i in shown]}
        typer.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
        return
    _print_header(c, p.decided, p.total, p.kept, p.revoked)
    table = Table(header_style="bold")
    for column in ("#", "system", "principal", "privilege", "scope", "decision", "by", "comment"):
        table.add_column(column, overflow="fold")
    for i in shown:
        e, d = i.entitlement, i.decision
        table.add_row(
            str(i.number),
            Text(safe(e.system)),
            Text(safe(e.principal)),
            Text(safe(e.privilege) + (" *" if e.privileged else "")),
            Text(safe(e.scope)),
            d.decision if d else "",
            Text(safe(d.by)) if d else "",
            Text(safe(d.comment)) if d else "",
        )
    make_console().print(table)


def _print_header(c: Campaign, decided: int, total: int, kept: int, revoked: int) -> None:
    console = make_console()
    console.print(Text(f"{c.id}  {safe(c.name)}  [{c.state}]"))
    console.print(
        Text(
            f"scope: {safe(c.scope)}  reviewers: {safe(', '.join(c.reviewers))}"
            + (f"  due: {format_time(c.due)[:10]}" if c.due else "")
        )
    )
    console.print(Text(f"progress: {decided}/{total} decided ({kept} keep, {revoked} revoke)"))


@review_app.command("decide")
def decide(
    campaign: Annotated[str, typer.Argument(help="Campaign id (or a unique prefix).")],
    entitlement: Annotated[str, typer.Argument(help="Item number (from review show) or key.")],
    decision: Annotated[str, typer.Argument(help="keep or revoke.")],
    comment: Annotated[str, typer.Option("--comment", "-m", help="Why (required).")],
    by: Annotated[
        str | None, typer.Option(help="The reviewer deciding [default: the local user].")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Decide one entitlement: keep or revoke, with a comment; recorded in the ledger.

    Example: keeptrail review decide 0193 4 revoke --comment 'left the team' --by alice
    """
    with _service(data_dir) as service:
        c, item, record = service.decide(campaign, entitlement, decision, comment, by)
        p = progress(service.reviews.items(c))
    typer.echo(
        f"item {item.number} ({safe(item.entitlement.principal)} "
        f"{safe(item.entitlement.privilege)}): {record.decision} by {safe(record.by)}; "
        f"event {record.event_id}; {p.decided}/{p.total} decided"
        + ("; campaign closed" if c.state == "closed" else "")
    )


@review_app.command("close")
def close(
    campaign: Annotated[str, typer.Argument(help="Campaign id (or a unique prefix).")],
    comment: Annotated[str, typer.Option("--comment", "-m", help="Why it closes now.")] = "",
    data_dir: DataDir = None,
) -> None:
    """Close a campaign before every item is decided (it closes by itself after the last one).

    Example: keeptrail review close 0193 --comment 'quarter ended'
    """
    with _service(data_dir) as service:
        c = service.close(campaign, comment)
    typer.echo(f"closed {c.id} (ledger event {c.close_event})")


@review_app.command("export")
def export(
    campaign: Annotated[str, typer.Argument(help="Campaign id (or a unique prefix).")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="json or csv.")] = "json",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
    window: Annotated[str, typer.Option(help="Usage evidence window, e.g. 90d.")] = "90d",
    data_dir: DataDir = None,
) -> None:
    """Evidence export: each entitlement, decision, who, when, comment, usage, ledger position.

    Example: keeptrail review export 0193 --format csv -o q3-review.csv
    """
    if fmt not in EXPORT_FORMATS:
        raise UserError("--format must be json or csv")
    span = parse_window(window)
    directory = data_dir or default_data_dir()
    now = time.time_ns() // 1000
    with open_reviews(directory) as reviews:
        c = reviews.get(campaign)
        items, history = reviews.items(c), reviews.history(c)
    store = store_for(directory)
    try:
        usage = UsageReader(store, since=now - max(span, DAY_US), until=now)
        document = build_export(c, items, history, store=store, usage=usage, generated_at=now)
    finally:
        store.close()
    text = (
        orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n"
        if fmt == "json"
        else to_csv(document)
    )
    if output is None:  # not typer.echo: it would strip escapes and change the evidence
        sys.stdout.write(text)
        return
    output.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {len(items)} items to {output}", err=True)
