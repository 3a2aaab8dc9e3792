"""``keeptrail serve``: the ingest and query API (docs/api.md), served by uvicorn."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from keeptrail.cli.common import DataDir


def serve(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", envvar="KEEPTRAIL_CONFIG", help="TOML file with a [server] table."
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
) -> None:
    """Serve the HTTP API: ingest, search, proofs, metrics (settings: flag > env > file).

    Example: keeptrail serve --config /etc/keeptrail/keeptrail.toml --collect agent.toml
    """
    from keeptrail.server.runner import serve as run_server  # noqa: PLC0415  # heavy import
    from keeptrail.server.settings import load_settings  # noqa: PLC0415

    settings = load_settings(config, listen=listen, data_dir=data_dir)
    sources = []
    if collect is not None:
        from keeptrail.agent.config import load_config  # noqa: PLC0415
        from keeptrail.agent.local import LocalCollector  # noqa: PLC0415

        sources.append(LocalCollector(load_config(collect, local=True)))
    scheme = "https" if settings.tls else "http"
    typer.echo(
        f"keeptrail serving {settings.directory} on {scheme}://{settings.listen}"
        " (create a token with: keeptrail tokens create --name NAME --role viewer)",
        err=True,
    )
    run_server(settings, sources=sources)
