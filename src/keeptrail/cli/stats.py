"""``keeptrail stats``: what the store holds."""

from __future__ import annotations

from typing import Annotated

import orjson
import typer

from keeptrail.cli.common import DataDir, Since, StoreUrl, Until, store_for, time_bounds
from keeptrail.cli.output import count_table, make_console
from keeptrail.cli.tokens import ApiToken, ServerUrl
from keeptrail.event import format_time


def stats(
    since: Since = None,
    until: Until = None,
    top: Annotated[int, typer.Option(min=1, max=1000, help="How many top actors/sources.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    data_dir: DataDir = None,
    store_url: StoreUrl = None,
    server: ServerUrl = None,
    token: ApiToken = None,
) -> None:
    """Counts by category, action and outcome; top actors, sources and hosts; time span.

    Example: keeptrail stats --since 7d
    """
    lo, hi = time_bounds(since, until)
    if server:
        from keeptrail.server.client import remote_stats  # noqa: PLC0415  # only when remote

        s = remote_stats(server, token or "", since=since, until=until, top=top)
    else:
        store = store_for(data_dir, must_exist=True, store=store_url)
        try:
            s = store.stats(since=lo, until=hi, top=top)
        finally:
            store.close()
    span = (
        (format_time(s.first_time), format_time(s.last_time))
        if s.first_time is not None and s.last_time is not None
        else (None, None)
    )
    if as_json:
        doc = {
            "total": s.total,
            "first": span[0],
            "last": span[1],
            "by_category": dict(s.by_category),
            "by_action_outcome": [
                {"action": a, "outcome": o, "count": n} for a, o, n in s.by_action_outcome
            ],
            "top_actors": dict(s.top_actors),
            "top_sources": dict(s.top_sources),
            "top_hosts": dict(s.top_hosts),
        }
        typer.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
        return
    console = make_console()
    console.print(f"{s.total} events, from {span[0]} to {span[1]}", markup=False)
    console.print(count_table("By category", ("category", "events"), s.by_category))
    console.print(
        count_table("By action and outcome", ("action", "outcome", "events"), s.by_action_outcome)
    )
    console.print(count_table("Top actors", ("actor", "events"), s.top_actors))
    console.print(count_table("Top sources", ("source ip", "events"), s.top_sources))
    console.print(count_table("Top hosts", ("host", "events"), s.top_hosts))
