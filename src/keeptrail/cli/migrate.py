"""``keeptrail migrate``: move an embedded store into PostgreSQL and check every root."""

from __future__ import annotations

from typing import Annotated

import typer

from keeptrail.cli.output import safe
from keeptrail.errors import UserError


def migrate(
    source: Annotated[
        str, typer.Option("--from", help="The embedded store: sqlite:///path/events.db.")
    ],
    target: Annotated[
        str, typer.Option("--to", help="An empty PostgreSQL database: postgresql://…")
    ],
) -> None:
    """Copy events, leaves, checkpoints, positions, holds and keys; then verify the new tree.

    The data directory of the SQLite store (its keys/ and keyring) is the one to give the
    servers that use the PostgreSQL store afterwards (--data-dir, with --store).
    Example: keeptrail migrate --from sqlite:///var/lib/keeptrail/events.db
    --to postgresql://keeptrail@db/keeptrail
    """
    from keeptrail.server.settings import redact_url  # noqa: PLC0415
    from keeptrail.store.migrate import migrate_sqlite_to_postgres, sqlite_path  # noqa: PLC0415

    if not target.startswith(("postgresql://", "postgres://")):
        raise UserError("--to must be a postgresql:// URL")
    path = sqlite_path(source)
    typer.echo(f"migrating {safe(path)} to {safe(redact_url(target))}", err=True)
    report = migrate_sqlite_to_postgres(path, target, progress=lambda t: typer.echo(t, err=True))
    verify = report.verify
    lines = [
        f"events:         {report.events:,}",
        f"leaves:         {report.leaves:,}",
        f"partitions:     {report.partitions:,}"
        f" ({report.sealed_keys} data keys moved, {report.destroyed_keys} destroyed)",
        f"checkpoints:    {report.checkpoints:,}",
        f"tree nodes:     {report.nodes:,}",
        f"file positions: {report.file_positions:,}",
        f"holds:          {report.holds:,}",
        f"roots:          {report.roots_matched:,} of {report.checkpoints:,} checkpoint sizes"
        " recomputed from PostgreSQL match",
        f"tree:           size {report.size:,}, root {report.root.hex()}",
    ]
    if verify is not None:
        lines.append(
            "verify:         "
            + ("intact" if verify.ok else f"{len(verify.findings)} finding(s)")
            + f" ({verify.checkpoints_checked} signed checkpoints checked)"
        )
    lines.append(f"elapsed:        {report.elapsed:.1f}s")
    typer.echo("\n".join(lines))
    if not report.ok:
        if report.mismatches:
            sizes = ", ".join(str(s) for s in report.mismatches[:10])
            typer.echo(f"MISMATCH at checkpoint sizes: {sizes}", err=True)
        if verify is not None and verify.first is not None:
            typer.echo(f"verify: {safe(verify.first.message)}", err=True)
        raise typer.Exit(1)
