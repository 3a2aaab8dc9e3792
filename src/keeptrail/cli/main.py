"""The ``keeptrail`` command: its sub-commands are registered here, each in its own module."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from keeptrail import __version__
from keeptrail.cli import demo, ingest, search, stats
from keeptrail.cli import ledger as ledger_cli
from keeptrail.cli import migrate as migrate_cli
from keeptrail.cli import serve as serve_cli
from keeptrail.cli import sigma as _sigma  # noqa: F401  (registers rules import-sigma)
from keeptrail.cli import tokens as tokens_cli
from keeptrail.cli.agent import agent as agent_command
from keeptrail.cli.alerts import alerts_app
from keeptrail.cli.config_check import config_app
from keeptrail.cli.holds import hold_app
from keeptrail.cli.output import safe
from keeptrail.cli.permissions import permissions_app
from keeptrail.cli.permissions_findings import findings as permissions_findings
from keeptrail.cli.protect_keys import register as register_key_commands
from keeptrail.cli.retention import retention_app
from keeptrail.cli.review import review_app
from keeptrail.cli.rules import rules_app
from keeptrail.errors import UserError
from keeptrail.query.errors import QueryError

app = typer.Typer(
    name="keeptrail",
    help="Who did what, when, and where — and was it allowed?",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts contain [brackets]; log text is never markup
)
app.command("ingest")(ingest.ingest)
app.command("search")(search.search)
app.command("stats")(stats.stats)
app.command("demo")(demo.demo)
app.command("verify")(ledger_cli.verify)
app.command("prove")(ledger_cli.prove)
app.command("verify-proof")(ledger_cli.verify_proof)
app.command("checkpoint")(ledger_cli.checkpoint)
register_key_commands(ledger_cli.keys_app)
app.add_typer(ledger_cli.keys_app, name="keys")
app.command("serve")(serve_cli.serve)
app.add_typer(tokens_cli.tokens_app, name="tokens")
app.command("agent")(agent_command)
app.command("migrate")(migrate_cli.migrate)
permissions_app.command("findings")(permissions_findings)
app.add_typer(permissions_app, name="permissions")
app.add_typer(retention_app, name="retention")
app.add_typer(hold_app, name="hold")
app.add_typer(rules_app, name="rules")
app.add_typer(alerts_app, name="alerts")
app.add_typer(review_app, name="review")
app.add_typer(config_app, name="config")


@app.command("version")
def version() -> None:
    """Print the version."""
    print(__version__)


def run() -> None:
    """Entry point: user errors become one line on stderr and exit status 2, not a traceback."""
    err = Console(stderr=True, highlight=False, soft_wrap=True)  # one line, never wrapped
    try:
        app()
    except QueryError as exc:
        err.print("[bold red]error:[/] invalid query", markup=True)
        err.print("\n".join(safe(line) for line in exc.render().splitlines()), markup=False)
        sys.exit(2)
    except (UserError, ValueError, OSError) as exc:
        err.print("[bold red]error:[/] ", end="", markup=True)
        err.print(safe(exc), markup=False)  # messages may quote log text or a server's answer
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted", markup=False)
        sys.exit(130)
