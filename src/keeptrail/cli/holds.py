"""``keeptrail hold add|list|release``: legal holds that retention never purges.

A hold is a search query plus a time range; adding and releasing one are themselves audit
events (``audit.hold_add``, ``audit.hold_release``) in the ledger. A query that does not parse
is shown exactly as ``keeptrail search`` shows it.
"""

from __future__ import annotations

import time
from typing import Annotated

import orjson
import typer
from rich.table import Table
from rich.text import Text

from keeptrail.cli.common import DataDir, StoreUrl, store_for
from keeptrail.cli.output import make_console, safe
from keeptrail.errors import UserError
from keeptrail.event import format_time, uuid7
from keeptrail.protect.holds import default_actor, hold_event, new_hold
from keeptrail.query.timerange import parse_time_bound
from keeptrail.store.contract import Hold

hold_app = typer.Typer(help="Legal holds: events that retention must keep.", no_args_is_help=True)

By = Annotated[
    str | None, typer.Option(help="Who does this, for the audit event [default: login name].")
]
AsJson = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


@hold_app.command("add")
def add(
    reason: Annotated[str, typer.Option(help="Why these events must be kept (case, ticket).")],
    query: Annotated[
        str, typer.Option(help="Search query of the held events [default: all events].")
    ] = "",
    since: Annotated[
        str | None, typer.Option(help="Hold events from this time: 2024-01-31, ISO, or 30d.")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Hold events before this time (exclusive), same forms.")
    ] = None,
    by: By = None,
    as_json: AsJson = False,
    data_dir: DataDir = None,
    store_url: StoreUrl = None,
) -> None:
    """Place a legal hold: matching events are never purged until it is released.

    Example: keeptrail hold add --query 'user:alice' --since 2024-01-01 --reason 'case 4711'
    """
    now = time.time_ns() // 1000
    lo, hi = _bound(since, "--since", now), _bound(until, "--until", now)
    actor = by or default_actor()
    hold = new_hold(
        hold_id=uuid7(), query=query, since=lo, until=hi, reason=reason, by=actor, now=now
    )
    store = store_for(data_dir, must_exist=True, store=store_url)
    try:
        store.add_hold(hold)
        note = hold.reason
        store.append(
            [hold_event("audit.hold_add", hold, by=actor, now=now, event_id=uuid7(), note=note)]
        )
    finally:
        store.close()
    if as_json:
        typer.echo(orjson.dumps(_hold_json(hold)).decode())
        return
    typer.echo(hold.id)
    typer.echo(
        f"Hold added: {safe(hold.query or '(all events)')} {_range(hold)}. "
        f"Release it with: keeptrail hold release {hold.id}",
        err=True,
    )


@hold_app.command("list")
def list_holds(
    show_all: Annotated[bool, typer.Option("--all", help="Include released holds.")] = False,
    as_json: AsJson = False,
    data_dir: DataDir = None,
    store_url: StoreUrl = None,
) -> None:
    """List the active legal holds (with --all, released ones too).

    Example: keeptrail hold list --all --json
    """
    store = store_for(data_dir, must_exist=True, store=store_url)
    try:
        holds = store.holds(active_only=not show_all)
    finally:
        store.close()
    if as_json:
        typer.echo(
            orjson.dumps([_hold_json(h) for h in holds], option=orjson.OPT_INDENT_2).decode()
        )
        return
    console = make_console()
    if not holds:
        console.print("No active legal holds." if not show_all else "No legal holds.", markup=False)
        return
    table = Table(title="Legal holds", title_justify="left")
    for name in ("id", "state", "query", "time range", "reason", "by", "created"):
        table.add_column(name, overflow="fold")
    for h in holds:
        state = "active" if h.active else f"released {format_time(h.released_at or 0)[:10]}"
        table.add_row(
            h.id,
            state,
            Text(safe(h.query or "(all events)")),
            _range(h),
            Text(safe(h.reason)),
            Text(safe(h.created_by or "")),
            format_time(h.created_at)[:19] + "Z",
        )
    console.print(table)


@hold_app.command("release")
def release(
    hold_id: Annotated[str, typer.Argument(help="The id printed by hold add / hold list.")],
    by: By = None,
    reason: Annotated[str, typer.Option(help="Why the hold ends.")] = "",
    data_dir: DataDir = None,
    store_url: StoreUrl = None,
) -> None:
    """Release a legal hold: its events follow the retention policies again.

    Example: keeptrail hold release 0190b7c2-5a1e-7000-8000-1234567890ab --reason 'case closed'
    """
    actor = by or default_actor()
    now = time.time_ns() // 1000
    store = store_for(data_dir, must_exist=True, store=store_url)
    try:
        known = {h.id: h for h in store.holds(active_only=False)}
        current = known.get(hold_id.strip().lower())
        if current is None:
            raise UserError(f"no legal hold {hold_id!r} (see keeptrail hold list --all)")
        if not current.active:
            raise UserError(
                f"legal hold {current.id} was already released "
                f"on {format_time(current.released_at or 0)} by {current.released_by or '?'}"
            )
        released = store.release_hold(current.id, actor, now)
        store.append(
            [
                hold_event(
                    "audit.hold_release",
                    released,
                    by=actor,
                    now=now,
                    event_id=uuid7(),
                    note=reason.strip(),
                )
            ]
        )
    finally:
        store.close()
    typer.echo(f"Released legal hold {released.id}.")


def _bound(text: str | None, option: str, now: int) -> int | None:
    if text is None:
        return None
    try:
        return parse_time_bound(text, now_us=now)
    except ValueError as exc:
        raise UserError(f"{option}: {exc}") from None


def _range(hold: Hold) -> str:
    since = format_time(hold.since) if hold.since is not None else "the first event"
    until = format_time(hold.until) if hold.until is not None else "no end"
    return f"[{since}, {until})"


def _hold_json(hold: Hold) -> dict[str, object]:
    return {
        "id": hold.id,
        "active": hold.active,
        "query": hold.query,
        "since": format_time(hold.since) if hold.since is not None else None,
        "until": format_time(hold.until) if hold.until is not None else None,
        "reason": hold.reason,
        "created_by": hold.created_by,
        "created_at": format_time(hold.created_at),
        "released_at": format_time(hold.released_at) if hold.released_at is not None else None,
        "released_by": hold.released_by,
    }
