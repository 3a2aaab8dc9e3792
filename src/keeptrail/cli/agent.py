"""``keeptrail agent``: collect this host's logs into a durable spool and ship them to a server."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated

import typer

from keeptrail.agent.config import load_config
from keeptrail.agent.runner import Agent
from keeptrail.errors import UserError


def agent(
    config: Annotated[
        Path,
        typer.Option(
            "--config",
            "-c",
            envvar="KEEPTRAIL_AGENT_CONFIG",
            help="The agent's TOML configuration (see docs/agent.md).",
        ),
    ] = Path("/etc/keeptrail/agent.toml"),
    log_level: Annotated[
        str, typer.Option("--log-level", help="debug, info, warning or error.")
    ] = "info",
) -> None:
    """Follow files, the journal and syslog senders; spool to disk; ship over HTTP(S).

    Example: keeptrail agent --config /etc/keeptrail/agent.toml
    """
    level = getattr(logging, log_level.upper(), None)
    if not isinstance(level, int):
        raise UserError(f"unknown --log-level {log_level!r}")
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )
    logging.getLogger("httpx").setLevel(max(level, logging.WARNING))
    if not config.is_file():
        raise UserError(f"{config}: no such configuration file (see docs/agent.md)")
    settings = load_config(config)
    logging.getLogger("keeptrail.agent").info(
        "agent pid %d, state in %s", os.getpid(), settings.state_dir
    )
    Agent(settings).run()
