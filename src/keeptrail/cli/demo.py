"""``keeptrail demo``: ingest the shipped sample logs and show what Keeptrail makes of them."""

from __future__ import annotations

import shutil
from collections import Counter
from datetime import UTC
from importlib.resources import as_file, files
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from keeptrail.cli.ingest import print_summary
from keeptrail.cli.output import count_table, event_table, make_console
from keeptrail.config import default_data_dir
from keeptrail.detect.alerts import Alert
from keeptrail.detect.runtime import open_engine
from keeptrail.errors import UserError
from keeptrail.event import Event
from keeptrail.ingest import Ingestor
from keeptrail.query.parse import parse as parse_query
from keeptrail.store import Store, open_store


def demo(
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            "-d",
            help="Fresh directory for the demo store [default: ~/.local/share/keeptrail-demo].",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Ingest the sample logs shipped with Keeptrail into a fresh store and show the findings.

    Example: keeptrail demo && keeptrail search -d ~/.local/share/keeptrail-demo 'user:alice'
    """
    target = data_dir or default_data_dir().with_name("keeptrail-demo")
    if target.exists():
        if not (target / "events.db").exists() and any(target.iterdir()):
            raise UserError(f"{target} is not empty and holds no Keeptrail store; not touching it")
        shutil.rmtree(target)
    console = make_console()
    store = open_store(target)
    engine = open_engine(target)  # the shipped rule pack, as `keeptrail ingest` runs it
    alerts: list[Alert] = []
    try:
        ingestor = Ingestor(store, tz=UTC, host="demo")
        samples = files("keeptrail") / "samples"
        for entry in sorted(samples.iterdir(), key=lambda t: t.name):
            if entry.name.endswith(".log"):
                with as_file(entry) as path:
                    ingestor.ingest_file(path)
        if engine is not None:
            engine.catch_up(store)
            alerts = engine.alerts.list(limit=100)
        print_summary(ingestor.summary, console)
        show_findings(store, console)
        show_alerts(alerts, console)
        sealed = sum(1 for p in store.partitions() if p.sealed)
        console.print(
            f"\nAt rest: {store.count()} events in {len(store.partitions())} partitions, "
            f"{sealed} encrypted with their own data key (keyring.db, apart from events.db).",
            markup=False,
        )
    finally:
        if engine is not None:
            engine.close()
        store.close()
    console.print(
        f"\nThe store is in {target}. Try:\n"
        f"  keeptrail search -d {target} 'outcome:failure AND ip:203.0.113.0/24'\n"
        f"  keeptrail search -d {target} 'action:sudo.command' --format jsonl\n"
        f"  keeptrail alerts list -d {target}\n"
        f"  keeptrail verify -d {target}\n"
        f"  keeptrail stats -d {target}",
        markup=False,
    )


def show_alerts(alerts: list[Alert], console: Console) -> None:
    """What the shipped detection rules raised on the samples, most severe first."""
    order = {"critical": 0, "high": 1, "medium": 2, "low": 3}
    ranked = sorted(alerts, key=lambda a: (order.get(a.severity, 9), a.rule_id))
    console.print(
        count_table(
            "Alerts raised by the shipped rules",
            ("severity", "rule", "key", "events"),
            (
                (
                    a.severity,
                    a.rule_id,
                    ", ".join(f"{k}={v}" for k, v in sorted(a.key.items())),
                    a.count,
                )
                for a in ranked
            ),
        )
    )


def _all(store: Store, query: str) -> list[Event]:
    return store.search(parse_query(query), limit=10_000).events


def show_findings(store: Store, console: Console) -> None:
    """Failed logins by source, successful logins, sudo use and account changes."""
    failures = _all(store, "category:authentication AND outcome:failure")
    by_source = Counter((e.source_ip or e.source_host or "(local)") for e in failures)
    users_by_source: dict[str, set[str]] = {}
    for e in failures:
        if e.actor_name:
            users_by_source.setdefault(e.source_ip or "(local)", set()).add(e.actor_name)
    console.print(
        count_table(
            "Failed authentication by source",
            ("source", "accounts tried", "failures"),
            (
                (src, ", ".join(sorted(users_by_source.get(src, set()))), n)
                for src, n in by_source.most_common()
            ),
        )
    )
    console.print(
        event_table(_all(store, "action:ssh.login AND outcome:success"), "Successful SSH logins")
    )
    console.print(event_table(_all(store, "action:sudo.command"), "sudo"))
    console.print(event_table(_all(store, "category:account"), "Account and group changes"))
