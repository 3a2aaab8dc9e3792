"""``keeptrail permissions findings``: what an auditor should look at, with reasons and evidence.

A thin shell over :func:`keeptrail.permissions.findings.findings_for`: it opens the snapshot
store and the event store of the data directory, reads ``[permissions.findings]`` from the
configuration file, and prints the findings as a table, JSON or CSV. Every string that came
from a collected system or a log (account names, commands) is escaped before the terminal or a
spreadsheet sees it.
"""

from __future__ import annotations

import csv
import io
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Final

import orjson
import typer
from rich.table import Table
from rich.text import Text

from keeptrail.cli.common import DataDir, store_for
from keeptrail.cli.output import csv_cell, make_console, safe
from keeptrail.config import default_data_dir, load_config_file
from keeptrail.errors import UserError
from keeptrail.permissions.findings import KINDS, Finding, findings_for
from keeptrail.permissions.findings_config import FindingsConfig, parse_window
from keeptrail.permissions.snapshots import open_snapshots

FORMATS: Final = ("table", "json", "csv")
_STYLE: Final = {"critical": "bold red", "high": "red", "medium": "yellow", "info": "dim"}
ConfigPath = Annotated[
    Path | None,
    typer.Option("--config", help="Configuration file [default: <data-dir>/keeptrail.toml]."),
]


def findings(
    system: Annotated[
        list[str] | None,
        typer.Option("--system", "-s", help="Only these systems (repeatable; * wildcards)."),
    ] = None,
    kind: Annotated[
        list[str] | None,
        typer.Option("--kind", "-k", help=f"Only these kinds (repeatable): {', '.join(KINDS)}."),
    ] = None,
    window: Annotated[
        str | None,
        typer.Option(help="How far back usage is read, e.g. 90d [default: config, else 90d]."),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table, json or csv.")] = "table",
    data_dir: DataDir = None,
    config: ConfigPath = None,
) -> None:
    """Privileged, dormant, unused, shared, orphaned, stale and drifted access, with evidence.

    Example: keeptrail permissions findings --system 'linux:*' --kind unused_privilege --window 90d
    """
    if fmt not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)}")
    directory = data_dir or default_data_dir()
    settings = FindingsConfig.from_config(load_config_file(directory, config))
    if window:
        settings = replace(settings, window_us=parse_window(window))
    snapshots = open_snapshots(directory)
    store = store_for(directory)
    try:
        found = findings_for(
            snapshots,
            store,
            config=settings,
            now=time.time_ns() // 1000,
            systems=system or (),
            kinds=kind or (),
        )
    finally:
        store.close()
        snapshots.close()
    write_findings(found, fmt)


def write_findings(found: list[Finding], fmt: str) -> None:
    """Print findings in one of :data:`FORMATS`."""
    if fmt == "json":
        typer.echo(orjson.dumps([f.to_json() for f in found], option=orjson.OPT_INDENT_2).decode())
        return
    if fmt == "csv":  # not typer.echo: it strips escape sequences, which would unmask a formula
        sys.stdout.write(findings_csv(found))
        return
    if not found:
        typer.echo("no findings (is there a snapshot? keeptrail permissions collect)")
        return
    table = Table(header_style="bold", show_lines=False)
    for column in ("severity", "kind", "system", "principal", "reason / recommendation"):
        table.add_column(column, overflow="fold")
    for f in found:
        text = Text(safe(f.reason))
        if f.recommendation:
            text.append("\n→ " + safe(f.recommendation), style="cyan")
        table.add_row(
            Text(f.severity, style=_STYLE.get(f.severity, "")),
            f.kind,
            Text(safe(f.system)),
            Text(safe(f.principal)),
            text,
        )
    make_console().print(table)


def findings_csv(found: list[Finding]) -> str:
    """One row per finding; evidence as ``kind:ref`` items separated by spaces."""
    out = io.StringIO()
    writer = csv.writer(out)
    columns = ("severity", "kind", "system", "principal", "reason", "recommendation")
    writer.writerow([*columns, "entitlement", "evidence"])
    for f in found:
        evidence = " ".join(f"{e.kind}:{e.ref}" for e in f.evidence)
        row = (f.severity, f.kind, f.system, f.principal, f.reason, f.recommendation or "")
        writer.writerow([csv_cell(v) for v in (*row, f.entitlement or "", evidence)])
    return out.getvalue()
