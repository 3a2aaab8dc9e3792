"""``keeptrail ingest``: read log files (or standard input) into the store.

The rules run after each committed batch; the alerts they raise are queued for every ``[notify]``
sink and sent once before the command ends. What could not be sent yet (a receiver down) stays
in the outbox, where ``keeptrail serve`` retries it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
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

from keeptrail.cli.common import DataDir, StoreUrl, store_for
from keeptrail.cli.output import count_table, make_console, safe
from keeptrail.config import default_data_dir, load_config_file, resolve_timezone
from keeptrail.detect.engine import Engine, RunStats
from keeptrail.detect.runtime import open_engine
from keeptrail.errors import UserError
from keeptrail.event import Event
from keeptrail.ingest import Ingestor, IngestSummary
from keeptrail.notify.config import notify_config
from keeptrail.notify.dispatcher import Notifier
from keeptrail.parsers.formats import format_names
from keeptrail.store import Store


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
    no_detect: Annotated[
        bool,
        typer.Option(
            "--no-detect", help="Do not run the detection rules after each batch ([detect])."
        ),
    ] = False,
    data_dir: DataDir = None,
    store_url: StoreUrl = None,
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
    store = store_for(data_dir, store=store_url)
    url = store_url or os.environ.get("KEEPTRAIL_STORE")
    directory = data_dir or default_data_dir()
    engine = None if no_detect else _open_engine(directory, url)
    notifier = None if engine is None else _open_notifier(directory, url, store)
    if notifier is not None and engine is not None:
        engine.add_listener(notifier.listener)
    detected = RunStats()
    leading = True
    sent: tuple[int, int] | None = None
    try:
        ingestor = Ingestor(
            store,
            fmt=fmt,
            tz=tz,
            on_commit=None
            if engine is None
            else lambda batch, _n: _detect(engine, store, detected, batch),
        )
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
        if engine is not None:
            _detect(engine, store, detected)  # events committed by others since the last run
            leading = engine.lead()
        if notifier is not None:
            attempts = notifier.run_once()  # each due delivery once; retries wait for a server
            sent = (attempts, notifier.outbox.counts().get("pending", 0))
    finally:
        if notifier is not None:
            notifier.close()
        if engine is not None:
            engine.close()
        store.close()
    console = make_console()
    print_summary(ingestor.summary, console)
    if engine is not None and not leading:
        console.print(
            "detection: another process runs the rules on this store (a server); it"
            " evaluates these events (keeptrail alerts list)",
            markup=False,
        )
    elif engine is not None:
        console.print(
            f"detection: {detected.alerts_new} new alert(s), {detected.alerts_updated} "
            f"update(s) to open alerts, {len(engine.rules)} rules"
            + (" (keeptrail alerts list)" if detected.alerts_new else ""),
            markup=False,
        )
    if sent is not None and (sent[0] or sent[1]):
        console.print(
            f"notifications: {sent[0]} delivery attempt(s); {sent[1]} pending in the outbox"
            + (" (keeptrail serve retries them)" if sent[1] else ""),
            markup=False,
        )


def _open_engine(directory: Path, store_url: str | None) -> Engine | None:
    """The engine, or None with a warning: a broken rule file must not stop collection."""
    try:
        return open_engine(directory, store=store_url)
    except UserError as exc:
        Console(stderr=True, highlight=False).print(
            f"warning: detection is off for this run: {safe(exc)}", markup=False
        )
        return None


def _open_notifier(directory: Path, store_url: str | None, store: Store) -> Notifier | None:
    """Delivery of this run's alerts to the ``[notify]`` sinks; None without sinks, or with a
    warning when the table is wrong (a broken sink must not stop collection either)."""
    try:
        cfg = notify_config(load_config_file(directory))
    except UserError as exc:
        Console(stderr=True, highlight=False).print(
            f"warning: notifications are off for this run: {safe(exc)}", markup=False
        )
        return None
    if not cfg.sinks:
        return None

    def record(events: Sequence[Event]) -> None:  # alert.delivery_failed events
        store.append(events)

    return Notifier.open(directory, cfg, record=record, store=store_url)


def _detect(
    engine: Engine, store: Store, total: RunStats, batch: list[Event] | None = None
) -> None:
    """Run the rules over what was just committed and add up what they raised."""
    stats = engine.catch_up(store, recent=batch)
    total.events += stats.events
    total.alerts_new += stats.alerts_new
    total.alerts_updated += stats.alerts_updated
    total.too_late += stats.too_late


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
