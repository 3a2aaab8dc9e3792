"""``keeptrail search``: the query language over the store, newest first."""

from __future__ import annotations

from typing import Annotated

import typer

from keeptrail.cli.common import DataDir, Since, StoreUrl, Until, store_for, time_bounds
from keeptrail.cli.output import OUTPUT_FORMATS, safe, write_events
from keeptrail.cli.tokens import ApiToken, ServerUrl
from keeptrail.errors import UserError
from keeptrail.query.parse import parse as parse_query
from keeptrail.store.contract import SearchPage


def search(
    query: Annotated[str, typer.Argument(help="e.g. 'user:alice AND outcome:failure'.")] = "",
    since: Since = None,
    until: Until = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="Events per page.")] = 50,
    cursor: Annotated[str | None, typer.Option(help="Continue after a previous page.")] = None,
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="table, json, jsonl, csv, ocsf or ecs.")
    ] = "table",
    data_dir: DataDir = None,
    store_url: StoreUrl = None,
    server: ServerUrl = None,
    token: ApiToken = None,
) -> None:
    """Search events, newest first.

    Example: keeptrail search 'action:ssh.login AND outcome:failure AND ip:10.0.0.0/8' --since 24h
    """
    if fmt not in OUTPUT_FORMATS:
        raise UserError(f"--format must be one of {', '.join(OUTPUT_FORMATS)}")
    tree = parse_query(query) if query.strip() else None
    lo, hi = time_bounds(since, until)
    if server:
        from keeptrail.server.client import remote_search  # noqa: PLC0415  # only when remote

        page = remote_search(
            server, token or "", query, since=since, until=until, limit=limit, cursor=cursor
        )
    else:
        store = store_for(data_dir, must_exist=True, store=store_url)
        try:
            page = store.search(tree, since=lo, until=hi, limit=limit, cursor=cursor)
        finally:
            store.close()
    write_events(page.events, fmt)
    if page.stopped_early:
        typer.echo(stopped_early_note(page), err=True)
    elif fmt == "table" and page.next_cursor:
        typer.echo(f"more: --cursor {safe(page.next_cursor)}", err=True)


def stopped_early_note(page: SearchPage) -> str:
    """What to tell the user when the scan budget ended a page before it was full."""
    where = f"; continue with --cursor {safe(page.next_cursor)}" if page.next_cursor else ""
    return (
        f"note: stopped after scanning {page.scanned:,} events without filling the page (free "
        "text and details.* are checked one event at a time); narrow the time range (--since/"
        f"--until) or use indexed fields (user, ip, action, host){where}"
    )
