"""``keeptrail config check``: validate the configuration file without starting anything.

The same checks ``keeptrail serve`` runs before it listens (:mod:`keeptrail.preflight`), plus
the ``[server]`` table, so a change to ``keeptrail.toml`` can be checked before a restart (or in
CI). An error is one line and exit status 2 (raised as ``UserError``); warnings are printed and
exit 0, or 1 with ``--strict``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from keeptrail.cli.common import DataDir
from keeptrail.cli.output import safe

config_app = typer.Typer(
    help="Check the configuration file.", no_args_is_help=True, rich_markup_mode=None
)


@config_app.command("check")
def check(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            envvar="KEEPTRAIL_CONFIG",
            help="TOML file [default: <data-dir>/keeptrail.toml].",
            show_default=False,
        ),
    ] = None,
    data_dir: DataDir = None,
    strict: Annotated[bool, typer.Option(help="Exit 1 when there are warnings.")] = False,
) -> None:
    """Validate [server], [protect], [retention], [detect] + rule files, [notify], [permissions].

    Example: keeptrail config check --config /etc/keeptrail/keeptrail.toml
    """
    from keeptrail.config import config_path, default_data_dir  # noqa: PLC0415
    from keeptrail.preflight import check_config  # noqa: PLC0415  # imports every capability
    from keeptrail.server.settings import load_settings  # noqa: PLC0415

    path = config_path(data_dir or default_data_dir(), config)
    server_file = path if config is not None or path.is_file() else None
    settings = load_settings(server_file, data_dir=data_dir)
    warnings = check_config(settings.directory, server_file)
    for warning in warnings:
        typer.echo(f"warning: {safe(warning)}", err=True)
    if server_file is None:
        typer.echo(f"OK: no configuration file at {safe(str(path))}; the defaults apply")
    elif warnings:
        noun = "warning" if len(warnings) == 1 else "warnings"
        typer.echo(f"OK: {safe(str(server_file))} ({len(warnings)} {noun})")
    else:
        typer.echo(f"OK: {safe(str(server_file))}")
    if strict and warnings:
        raise typer.Exit(1)
