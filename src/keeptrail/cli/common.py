"""Option types and helpers shared by every command."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated

import typer

from keeptrail.config import default_data_dir
from keeptrail.errors import UserError
from keeptrail.query.timerange import parse_time_bound
from keeptrail.store import Store, open_store

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        "-d",
        envvar="KEEPTRAIL_DATA_DIR",
        help="Where the embedded store lives [default: ~/.local/share/keeptrail].",
        show_default=False,
    ),
]
Since = Annotated[
    str | None,
    typer.Option(help="Start of the time range: 24h, 7d, 2024-01-31, or an ISO timestamp."),
]
Until = Annotated[
    str | None, typer.Option(help="End of the time range (exclusive), same forms as --since.")
]


StoreUrl = Annotated[
    str | None,
    typer.Option(
        "--store",
        envvar="KEEPTRAIL_STORE",
        help="Store URL: postgresql://user@host/db for a shared PostgreSQL store "
        "[default: the embedded store in the data directory].",
        show_default=False,
    ),
]


def store_for(
    data_dir: Path | None, *, must_exist: bool = False, store: str | None = None
) -> Store:
    """Open the store (``--store`` / ``$KEEPTRAIL_STORE`` URL, else the data directory's).

    A missing embedded store is a clear error when reading. With a PostgreSQL URL the data
    directory still holds the ledger key, the keyring and ``keeptrail.toml``.
    """
    directory = data_dir or default_data_dir()
    url = store or os.environ.get("KEEPTRAIL_STORE")
    if url and url.startswith(("postgresql://", "postgres://")):
        from keeptrail.store.postgres import open_postgres  # noqa: PLC0415  # psycopg on use

        return open_postgres(url, data_dir=directory)
    if url:
        return open_store(url)
    if must_exist and not (directory / "events.db").exists():
        raise UserError(
            f"no Keeptrail store in {directory}: ingest something first "
            "(keeptrail ingest /var/log/auth.log) or pass --data-dir"
        )
    return open_store(directory)


def time_bounds(since: str | None, until: str | None) -> tuple[int | None, int | None]:
    """``--since/--until`` as µs, relative to now."""
    now = time.time_ns() // 1000
    lo = parse_time_bound(since, now_us=now) if since else None
    hi = parse_time_bound(until, now_us=now) if until else None
    if lo is not None and hi is not None and lo >= hi:
        raise UserError("--since must be before --until")
    return lo, hi
