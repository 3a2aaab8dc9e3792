"""``keeptrail ingest``: read log files (or standard input) into the store."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from keeptrail.cli.common import DataDir, store_for
from keeptrail.cli.output import count_table, make_console, safe
from keeptrail.config import resolve_timezone
from keeptrail.errors import UserError
from keeptrail.ingest import Ingestor, IngestSummary
from keeptrail.parsers.formats import format_names


def ingest(
    paths: Annotated[list[str], typer.Argument(help="Log files (plain or .gz), or - for stdin.")],
    fmt: Annotated[
        str, typer.Option("--format", "-f", help=f"Parser: {', '.join(format_names())}.")
    ] = "auto",
    timezone: Annotated[
        str | None,
        typer.Option("--timezone", help="Zone of timestamps without one [default: system]."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    publish_checkpoints: Annotated[
        Path | None,
        typer.Option(
            "--publish-checkpoints",
            envvar="KEEPTRAIL_CHECKPOINT_LOG",
            help="Append every signed checkpoint to this file (or one file each in this "
            "directory), ideally on another disk or host.",
        ),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Ingest log files; running it again reads only what is new.

    Example: keeptrail ingest /var/log/auth.log /var/log/auth.log.2.gz
    """
    if fmt not in format_names():
        raise UserError(f"unknown --format {fmt!r}; choose from {', '.join(format_names())}")
    files = [Path(p) for p in paths if p != "-"]
    for f in files:
        if not f.is_file():
            raise UserError(f"{f}: not a readable file")
    tz = resolve_timezone(timezone)
    if publish_checkpoints is not None:
        # The store reads its publication target from the environment; the flag wins over it.
        os.environ["KEEPTRAIL_CHECKPOINT_LOG"] = str(publish_checkpoints)
    store = store_for(data_dir)
    try:
        ingestor = Ingestor(store, fmt=fmt, tz=tz)
        show_progress = not quiet and sys.stderr.isatty()
        with _progress(disable=not show_progress) as progress:
            for p in paths:
                if p == "-":
                    ingestor.ingest_stream(sys.stdin.buffer)
                    continue
                path = Path(p)
                task = progress.add_task(path.name, total=path.stat().st_size)

                def advance(n: int, task: TaskID = task) -> None:
                    progress.advance(task, n)

                ingestor.ingest_file(path, progress=advance)
                progress.update(task, completed=path.stat().st_size)
    finally:
        store.close()
    print_summary(ingestor.summary, make_console())


def _progress(*, disable: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        disable=disable,
        transient=True,
    )


def print_summary(summary: IngestSummary, console: Console) -> None:
    """Lines read, events by action and outcome, unparsed, throughput, per-source notes."""
    for s in summary.sources:
        note = f"resumed at byte {s.started_at}" if s.resumed else "read from the start"
        if s.pending:
            note += "; an unfinished line or record waits for the rest"
        console.print(
            f"{safe(s.name)} ({s.format}): {s.lines} lines, {s.stored} new events"
            + (f", {s.duplicates} already stored" if s.duplicates else "")
            + (f", {s.blank} blank" if s.blank else "")
            + f" ({note})",
            markup=False,
        )
    rows = sorted(summary.by_action_outcome.items(), key=lambda kv: -kv[1])
    console.print(
        count_table(
            "Events by action and outcome",
            ("action", "outcome", "events"),
            ((a, o, n) for (a, o), n in rows),
        )
    )
    console.print(
        f"{summary.lines} lines → {summary.events} events "
        f"({summary.events - summary.unparsed} parsed, {summary.unparsed} unparsed) "
        f"in {summary.elapsed:.2f}s, {summary.rate:,.0f} events/s",
        markup=False,
    )
