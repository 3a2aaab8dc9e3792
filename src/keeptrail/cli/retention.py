"""``keeptrail retention plan|apply|check|reclaim``: what the policies expire, and purging it.

``plan`` and ``apply`` compute the same plan (:mod:`keeptrail.protect.plan`) from the store's
partitions, the configured policies and the active legal holds; ``apply`` then runs it
(:mod:`keeptrail.protect.purge`) and, once the purge event is recorded, frees the storage of
the purged partitions (``Store.reclaim``), which ``reclaim`` alone resumes after an
interruption. docs/protect.md explains policies, holds and purges.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from keeptrail.cli.common import DataDir, StoreUrl, store_for
from keeptrail.cli.output import make_console, safe
from keeptrail.config import default_data_dir
from keeptrail.errors import UserError
from keeptrail.event import format_time
from keeptrail.protect.holds import default_actor
from keeptrail.protect.plan import RetentionPlan, compute_plan
from keeptrail.protect.purge import ApplyResult, apply_plan
from keeptrail.protect.retention import DEFAULT_CLASS, RetentionPolicies, load_policies
from keeptrail.query.timerange import parse_time_bound
from keeptrail.store.contract import ReclaimResult, Store

retention_app = typer.Typer(
    help="Retention policies: what has expired, and purging it.", no_args_is_help=True
)

ConfigFile = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="Configuration file [default: $KEEPTRAIL_CONFIG, else <data-dir>/keeptrail.toml].",
        show_default=False,
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
ReclaimBudget = Annotated[
    float | None,
    typer.Option(
        "--reclaim-budget",
        min=0.0,
        help="Seconds to spend freeing purged partitions' storage; at least one table is freed"
        " when any waits [default: no limit].",
        show_default=False,
    ),
]


def _plan(store: Store, policies: RetentionPolicies, now: int) -> RetentionPlan:
    holds = store.holds(active_only=True)
    return compute_plan(store.partitions(), policies, holds, now=now)


@retention_app.command("plan")
def plan(
    now: Annotated[
        str | None,
        typer.Option(help="Plan as of this time (2027-01-31, ISO timestamp) [default: now]."),
    ] = None,
    as_json: AsJson = False,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    store_url: StoreUrl = None,
) -> None:
    """Show which partitions have expired, what legal holds keep, and what a purge removes.

    Example: keeptrail retention plan --now 2027-01-31
    """
    directory = data_dir or default_data_dir()
    policies = load_policies(directory, config)
    real_now = time.time_ns() // 1000
    try:
        at = parse_time_bound(now, now_us=real_now) if now else real_now
    except ValueError as exc:
        raise UserError(f"--now: {exc}") from None
    store = store_for(directory, must_exist=True, store=store_url)
    try:
        result = _plan(store, policies, at)
    finally:
        store.close()
    if as_json:
        typer.echo(orjson.dumps(result.to_json(), option=orjson.OPT_INDENT_2).decode())
        return
    _print_plan(result)


@retention_app.command("apply")
def apply(
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    by: Annotated[
        str | None, typer.Option(help="Who is purging, for the audit event [default: login].")
    ] = None,
    reclaim_budget: ReclaimBudget = None,
    no_reclaim: Annotated[
        bool,
        typer.Option(
            "--no-reclaim", help="Leave freeing storage to a later `keeptrail retention reclaim`."
        ),
    ] = False,
    as_json: AsJson = False,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    store_url: StoreUrl = None,
) -> None:
    """Purge every expired partition (keys destroyed first), except events under legal hold.

    Records one audit.retention_purge event, then frees the purged partitions' storage.
    Example: keeptrail retention apply --yes
    """
    directory = data_dir or default_data_dir()
    policies = load_policies(directory, config)
    store = store_for(directory, must_exist=True, store=store_url)
    try:
        holds = store.holds(active_only=True)
        result = compute_plan(store.partitions(), policies, holds, now=time.time_ns() // 1000)
        if not as_json:
            _print_plan(result)
        if not result.expired:
            if as_json:
                empty: dict[str, object] = {"purge_event": None, "partitions": [], "deleted": 0}
                typer.echo(orjson.dumps(empty).decode())
            return
        if not yes and not typer.confirm(
            f"Purge {len(result.expired)} partitions? Their keys are destroyed: this cannot "
            "be undone.",
            default=False,
            err=True,
        ):
            raise typer.Exit(1)
        started = time.perf_counter()
        done = apply_plan(store, result, holds, by=by or default_actor())
        elapsed = time.perf_counter() - started
        # After the purge event is recorded: the purge is complete and explained without it.
        freed = None if no_reclaim else store.reclaim(reclaim_budget)
    finally:
        store.close()
    if as_json:
        report = {
            **_apply_json(done, elapsed),
            "reclaim": _reclaim_json(freed) if freed is not None else None,
            "warnings": [str(w) for w in result.warnings],
        }
        typer.echo(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
        return
    console = make_console()
    console.print(
        f"Purged {len(done.done)} partitions: {done.deleted} events removed, "
        f"{done.keys_destroyed} keys destroyed, {done.kept} events kept under legal hold "
        f"({elapsed:.2f}s). Recorded as audit.retention_purge {done.purge_event_id}.",
        markup=False,
    )
    if freed is not None:
        _print_reclaim(console, freed)


@retention_app.command("reclaim")
def reclaim(
    budget: ReclaimBudget = None,
    as_json: AsJson = False,
    data_dir: DataDir = None,
    store_url: StoreUrl = None,
) -> None:
    """Free the storage of purged partitions (their keys are already destroyed).

    `retention apply` does this after each purge; run it to finish an interrupted or
    budget-limited reclaim. Example: keeptrail retention reclaim --reclaim-budget 30
    """
    store = store_for(data_dir or default_data_dir(), must_exist=True, store=store_url)
    try:
        freed = store.reclaim(budget)
    finally:
        store.close()
    if as_json:
        typer.echo(orjson.dumps(_reclaim_json(freed), option=orjson.OPT_INDENT_2).decode())
        return
    _print_reclaim(make_console(), freed)


def _reclaim_json(freed: ReclaimResult) -> dict[str, object]:
    return {
        "dropped": freed.dropped,
        "remaining": freed.remaining,
        "elapsed_ms": round(freed.seconds * 1000, 3),
    }


def _print_reclaim(console: Console, freed: ReclaimResult) -> None:
    if not freed.dropped and not freed.remaining:
        return
    text = f"Reclaimed the storage of {len(freed.dropped)} purged partitions ({freed.seconds:.2f}s)"
    if freed.remaining:
        text += f"; {freed.remaining} still waiting: run keeptrail retention reclaim"
    console.print(f"{text}.", markup=False)


@retention_app.command("check")
def check(data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """Validate the [retention] configuration and show each class with compliance warnings.

    Example: keeptrail retention check --config /etc/keeptrail/keeptrail.toml
    """
    directory = data_dir or default_data_dir()
    policies = load_policies(directory, config)
    console = make_console()
    origin = "shipped defaults (no [retention] table)" if policies.shipped else "configuration"
    table = Table(title=f"Retention classes — {origin}", title_justify="left")
    for name in ("class", "days", "category", "action", "source"):
        table.add_column(name, justify="right" if name == "days" else "left")
    for p in policies.policies:
        table.add_row(
            p.name,
            str(p.days),
            ", ".join(sorted(p.categories)) or "*",
            ", ".join(p.actions) or "*",
            ", ".join(sorted(p.sources)) or "*",
        )
    table.add_row(DEFAULT_CLASS, str(policies.default_days), "(everything else)", "", "")
    console.print(table)
    _print_warnings(policies_warnings=[str(w) for w in policies.warnings()])


def _print_plan(result: RetentionPlan) -> None:
    console = make_console()
    if not result.expired:
        console.print(
            f"Nothing has expired at {format_time(result.now)} "
            f"({result.retained} partitions retained).",
            markup=False,
        )
        _print_warnings([str(w) for w in result.warnings])
        return
    table = Table(title=f"Expired at {format_time(result.now)}", title_justify="left")
    for name in ("partition", "policy", "state", "events", "leaves", "held by", "remove"):
        table.add_column(name, justify="right" if name == "events" else "left")
    for item in result.expired:
        p = item.partition
        leaves = f"{p.first_leaf}..{p.last_leaf}" if p.first_leaf is not None else "-"
        held = safe(", ".join(item.holds)) or "-"
        table.add_row(
            Text(p.name),
            Text(f"{item.policy} ({item.days}d)"),
            p.state,
            f"{p.events:,}",
            leaves,
            Text(held),
            "all, key destroyed" if item.whole else "all but held events, key kept",
        )
    console.print(table)
    partial = sum(1 for item in result.expired if not item.whole)
    bound = "" if result.exact else "at most "
    console.print(
        f"{len(result.expired)} partitions expired, {bound}{result.events_to_remove:,} events "
        "to remove"
        + (
            f" ({partial} partitions meet an active legal hold: held events stay)"
            if partial
            else ""
        )
        + f"; {result.retained} partitions retained.",
        markup=False,
    )
    _print_warnings([str(w) for w in result.warnings])


def _print_warnings(policies_warnings: list[str]) -> None:
    err = Console(stderr=True, highlight=False)
    for text in policies_warnings:
        err.print(f"warning: {safe(text)}", markup=False)


def _apply_json(done: ApplyResult, elapsed: float) -> dict[str, object]:
    return {
        "purge_event": done.purge_event_id,
        "deleted": done.deleted,
        "kept": done.kept,
        "keys_destroyed": done.keys_destroyed,
        "elapsed_ms": round(elapsed * 1000, 3),
        "partitions": [
            {
                "partition": r.partition,
                "policy": item.policy,
                "days": item.days,
                "state": r.state,
                "deleted": r.deleted,
                "kept": r.kept,
                "key_destroyed": r.key_destroyed,
                "leaf_ranges": [list(x) for x in r.leaf_ranges],
            }
            for item, r in done.done
        ],
    }
