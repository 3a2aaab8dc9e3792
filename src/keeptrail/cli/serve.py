"""``keeptrail serve``: the ingest and query API (docs/api.md), served by uvicorn."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from keeptrail.cli.common import DataDir, StoreUrl
from keeptrail.cli.output import safe
from keeptrail.config import config_path, default_data_dir


def serve(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            envvar="KEEPTRAIL_CONFIG",
            help="TOML file: [server] and every capability's table "
            "[default: <data-dir>/keeptrail.toml, if it exists].",
            show_default=False,
        ),
    ] = None,
    listen: Annotated[
        str | None,
        typer.Option(help="HOST:PORT to listen on [default: 127.0.0.1:8087, loopback only]."),
    ] = None,
    collect: Annotated[
        Path | None,
        typer.Option(
            "--collect",
            help="Single-node mode: also run the sources of this agent configuration "
            "(docs/agent.md) and store what they collect directly.",
        ),
    ] = None,
    data_dir: DataDir = None,
    store_url: StoreUrl = None,
) -> None:
    """Serve the HTTP API: ingest, search, proofs, metrics (settings: flag > env > file).

    Example: keeptrail serve --config /etc/keeptrail/keeptrail.toml --collect agent.toml
    """
    from keeptrail.preflight import check_config  # noqa: PLC0415
    from keeptrail.server.runner import serve as run_server  # noqa: PLC0415  # heavy import
    from keeptrail.server.settings import load_settings, redact_url  # noqa: PLC0415

    config = config or _default_config(data_dir)
    settings = load_settings(config, listen=listen, data_dir=data_dir, store=store_url)
    # Every table, with its own validator, before uvicorn: an error is one line and exit 2
    # here, rather than a startup traceback from inside the lifespan.
    for warning in check_config(settings.directory, settings.config_file):
        typer.echo(f"warning: {safe(warning)}", err=True)
    sources = []
    if collect is not None:
        from keeptrail.agent.config import load_config  # noqa: PLC0415
        from keeptrail.agent.local import LocalCollector  # noqa: PLC0415

        sources.append(LocalCollector(load_config(collect, local=True)))
    scheme = "https" if settings.tls else "http"
    serving = redact_url(settings.store) if settings.store else settings.directory
    typer.echo(
        f"keeptrail serving {serving} on {scheme}://{settings.listen}"
        " (create a token with: keeptrail tokens create --name NAME --role viewer)",
        err=True,
    )
    run_server(settings, sources=sources)


def _default_config(data_dir: Path | None) -> Path | None:
    """``<data-dir>/keeptrail.toml`` when it exists: its ``[server]`` table counts too."""
    path = config_path(data_dir or default_data_dir())
    return path if path.is_file() else None
