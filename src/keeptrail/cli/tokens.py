"""``keeptrail tokens``: create, list and revoke API tokens (stored only as hashes).

Each change is also recorded in the event store as a self-audit event whose actor is the local
user who ran the command, exactly as a change made over the API is recorded with the admin
token's name.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.table import Table
from rich.text import Text

from keeptrail.cli.common import DataDir, StoreUrl, store_for
from keeptrail.cli.output import make_console, safe
from keeptrail.config import default_data_dir
from keeptrail.errors import UserError
from keeptrail.server import audit
from keeptrail.server.tokens import ROLES, Token, TokenError, TokenStore

# Options of the commands that can ask a server instead of a local store (search, stats).
ServerUrl = Annotated[
    str | None,
    typer.Option(
        "--server",
        envvar="KEEPTRAIL_SERVER",
        help="Ask this Keeptrail server (https://host:8087) instead of the local store.",
    ),
]
ApiToken = Annotated[
    str | None,
    typer.Option(
        "--token", envvar="KEEPTRAIL_TOKEN", help="API token for --server, or @FILE holding it."
    ),
]

tokens_app = typer.Typer(help="API tokens for the server.", no_args_is_help=True)


def _tokens(directory: Path, store_url: str | None) -> TokenStore:
    """The tokens of the data directory, or of the PostgreSQL store every server shares."""
    return TokenStore(directory, store_url or os.environ.get("KEEPTRAIL_STORE"))


def _record(directory: Path, action: str, token: Token, store_url: str | None) -> None:
    store = store_for(directory, store=store_url)  # or $KEEPTRAIL_STORE
    try:
        store.append(
            [
                audit.audit_event(
                    action,
                    actor=audit.local_actor(),
                    actor_type="user",
                    resource=token.name,
                    resource_type="token",
                    collector_source="cli",
                    details={"token_id": token.id, "token_role": token.role},
                )
            ]
        )
    finally:
        store.close()


@tokens_app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", "-n", help="Who or what uses it (unique).")],
    role: Annotated[str, typer.Option("--role", "-r", help=f"One of {', '.join(ROLES)}.")],
    data_dir: DataDir = None,
    store_url: StoreUrl = None,
) -> None:
    """Create a token and print it once; only its hash is kept.

    Example: keeptrail tokens create --name agent-web1 --role ingest > agent-web1.token
    """
    directory = data_dir or default_data_dir()
    tokens = _tokens(directory, store_url)
    try:
        token, secret = tokens.create(name=name, role=role, created_by=audit.local_actor())
    except TokenError as exc:
        raise UserError(str(exc)) from exc
    finally:
        tokens.close()
    _record(directory, audit.TOKEN_CREATE, token, store_url)
    typer.echo(secret)
    typer.echo(f"created {role} token {name!r}: store it now, it cannot be shown again", err=True)


@tokens_app.command("list")
def list_tokens(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    data_dir: DataDir = None,
    store_url: StoreUrl = None,
) -> None:
    """List tokens: name, role, when created and revoked (never the secret).

    Example: keeptrail tokens list
    """
    tokens = _tokens(data_dir or default_data_dir(), store_url)
    try:
        found = tokens.list()
    finally:
        tokens.close()
    if as_json:
        typer.echo(orjson.dumps([t.to_json() for t in found], option=orjson.OPT_INDENT_2).decode())
        return
    table = Table(header_style="bold")
    for column in ("name", "role", "id", "created", "created by", "revoked"):
        table.add_column(column)
    for t in found:
        table.add_row(
            *(Text(safe(v)) for v in (t.name, t.role, t.id, t.created_at, t.created_by)),
            Text(safe(t.revoked_at or "")),
        )
    make_console().print(table)


@tokens_app.command("revoke")
def revoke(
    name: Annotated[str, typer.Argument(help="The token's name (or id).")],
    data_dir: DataDir = None,
    store_url: StoreUrl = None,
) -> None:
    """Revoke a token: requests with it get 401 from now on.

    Example: keeptrail tokens revoke agent-web1
    """
    directory = data_dir or default_data_dir()
    tokens = _tokens(directory, store_url)
    try:
        token = tokens.revoke(name, revoked_by=audit.local_actor())
    except TokenError as exc:
        raise UserError(str(exc)) from exc
    finally:
        tokens.close()
    _record(directory, audit.TOKEN_REVOKE, token, store_url)
    typer.echo(f"revoked {token.role} token {token.name!r} ({token.id})")
