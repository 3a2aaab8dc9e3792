"""``keeptrail keys rotate`` and ``keeptrail keys status``: the encryption keys of a store.

They join the ``keys`` group (beside ``keys public``, the ledger's verifier key); each opens the
keyring — ``<data-dir>/keyring.db``, or with ``--store postgresql://…`` the database's
``data_keys`` — calls one method and formats the result. docs/protect.md explains rotation and
what to back up; docs/postgres.md what changes with several servers.
"""

from __future__ import annotations

import getpass
import socket
import time
from pathlib import Path
from typing import Annotated, Protocol

import orjson
import typer
from rich.console import Console
from rich.table import Table

from keeptrail.cli.common import DataDir, StoreUrl
from keeptrail.cli.output import make_console, safe
from keeptrail.config import default_data_dir, load_config_file
from keeptrail.errors import UserError
from keeptrail.event import Event, uuid7
from keeptrail.protect.keyring import KeyringStatus, RotationResult, iso, keyring_at
from keeptrail.store.contract import Store

ConfigFile = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="Configuration file [default: $KEEPTRAIL_CONFIG, else <data-dir>/keeptrail.toml].",
        show_default=False,
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


class _Keys(Protocol):
    """What both keyrings offer these commands."""

    def rotate(self) -> RotationResult: ...
    def status(self) -> KeyringStatus: ...
    def close(self) -> None: ...


def _postgres(url: str | None) -> str | None:
    return url if url and url.startswith(("postgresql://", "postgres://")) else None


def _open_keys(directory: Path, config: Path | None, url: str | None) -> _Keys:
    settings = load_config_file(directory, config)
    if url is None:
        return keyring_at(directory, settings)
    from keeptrail.store.postgres_keys import open_pg_keyring  # noqa: PLC0415 - psycopg on use

    return open_pg_keyring(url, directory, settings)


def register(keys_app: typer.Typer) -> None:
    """Add ``rotate`` and ``status`` to the existing ``keys`` group."""
    keys_app.command("rotate")(rotate)
    keys_app.command("status")(status)


def rotate(
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: AsJson = False,
    store: StoreUrl = None,
) -> None:
    """Introduce a new master key version and re-wrap every data key under it.

    Events are not re-encrypted. Afterwards the old master key is no longer needed. With
    --store postgresql://… the data keys stored in PostgreSQL are re-wrapped; copy the new
    keys/ directory to every server.

    Example: keeptrail keys rotate --data-dir /var/lib/keeptrail
    """
    directory = data_dir or default_data_dir()
    url = _postgres(store)
    keyring = _open_keys(directory, config, url)
    try:
        result = keyring.rotate()
    finally:
        keyring.close()
    _record(directory, config, result, url)
    if as_json:
        typer.echo(orjson.dumps(_rotation_json(result), option=orjson.OPT_INDENT_2).decode())
        return
    old = result.previous_version
    console = make_console()
    console.print(
        f"Master key v{result.version} ({result.provider}) now protects {result.rewrapped} "
        f"data key{'s' if result.rewrapped != 1 else ''}; v{old} is retired "
        f"({result.elapsed * 1000:.0f} ms).",
        markup=False,
    )
    console.print(
        f"Back up master key v{result.version} now; v{old} is no longer needed to read anything.",
        markup=False,
    )
    if url is not None:
        console.print(
            f"Copy master key v{result.version} (keys/ of this data directory, or the new "
            "variable) to every server sharing this store: until they have it they keep reading "
            "but refuse to create new partitions.",
            markup=False,
        )


def status(
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: AsJson = False,
    store: StoreUrl = None,
) -> None:
    """List the master key versions: provider, dates, and how many data keys each protects.

    Example: keeptrail keys status --json
    """
    directory = data_dir or default_data_dir()
    keyring = _open_keys(directory, config, _postgres(store))
    try:
        report = keyring.status()
    finally:
        keyring.close()
    if as_json:
        typer.echo(orjson.dumps(report.to_json(), option=orjson.OPT_INDENT_2).decode())
        return
    _print_status(report)


def _print_status(report: KeyringStatus) -> None:
    console = make_console()
    table = Table(title=f"Keyring {report.path}", title_justify="left")
    for name in ("version", "provider", "created", "retired", "data keys", "destroyed", "key"):
        table.add_column(name, justify="right" if name in {"data keys", "destroyed"} else "left")
    for v in report.versions:
        table.add_row(
            f"v{v.version}" + (" (current)" if v.version == report.current_version else ""),
            v.provider,
            iso(v.created_at),
            iso(v.retired_at) if v.retired_at is not None else "-",
            str(v.live_keys),
            str(v.destroyed_keys),
            {True: "present", False: "absent", None: "?"}[v.present],
        )
    console.print(table)
    console.print(
        f"{report.live_keys} live data keys, {report.destroyed_keys} destroyed (crypto-shredded).",
        markup=False,
    )
    current = report.versions[-1].provider
    if report.versions[-1].present is False:
        console.print(
            f"Master key v{report.current_version} is not at hand: new partitions cannot be "
            "encrypted and existing ones not read (see docs/protect.md, Recovery).",
            markup=False,
        )
    retired = [v for v in report.versions[:-1] if v.present and not v.live_keys]
    if retired:
        names = ", ".join(f"v{v.version}" for v in retired)
        console.print(
            f"{names} protect no live data key: they can be deleted once the keyring backups "
            "from before their retirement have expired.",
            markup=False,
        )
    if current != report.configured_provider:
        console.print(
            f"The configuration says kek = {report.configured_provider!r} but the current master "
            f"key comes from {current!r}: run keeptrail keys rotate to switch.",
            markup=False,
        )


def _rotation_json(result: RotationResult) -> dict[str, object]:
    return {
        "previous_version": result.previous_version,
        "version": result.version,
        "provider": result.provider,
        "rewrapped": result.rewrapped,
        "elapsed_ms": round(result.elapsed * 1000, 3),
    }


def rotation_event(result: RotationResult, *, by: str, now: int, event_id: str) -> Event:
    """The ``audit.key_rotation`` event that records a rotation in the ledger."""
    return Event(
        time=now,
        ingested_at=now,
        category="audit",
        action="audit.key_rotation",
        outcome="success",
        severity="medium",
        actor_name=by,
        actor_type="user",
        target_system="keeptrail",
        target_resource=f"v{result.version}",
        target_resource_type="master_key",
        details={
            "previous_version": result.previous_version,
            "version": result.version,
            "provider": result.provider,
            "rewrapped": result.rewrapped,
        },
        collector_host=socket.gethostname(),
        collector_source="cli",
        raw=f"master key rotated to v{result.version} ({result.provider}) by {by}: "
        f"{result.rewrapped} data keys re-wrapped, v{result.previous_version} retired",
        id=event_id,
    )


def _actor() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no passwd entry (containers)
        return "keeptrail"


def _record(directory: Path, config: Path | None, result: RotationResult, url: str | None) -> None:
    """Store the rotation as an audit event when there is a store (always with PostgreSQL).

    The store is opened with the same configuration file as the keyring (``--config``): its
    keyring, retention classes and clear fields decide where and how the event is written.
    """
    if url is None and not (directory / "events.db").exists():
        return
    from keeptrail.store import open_store  # noqa: PLC0415 - only when there is a store

    event = rotation_event(result, by=_actor(), now=time.time_ns() // 1000, event_id=uuid7())
    try:
        if url is None:
            store: Store = open_store(directory, config_file=config)
        else:
            from keeptrail.store.postgres import open_postgres  # noqa: PLC0415 - psycopg on use

            store = open_postgres(url, data_dir=directory, config_file=config)
        try:
            store.append([event])
        finally:
            store.close()
    except (UserError, OSError, ValueError) as exc:  # the rotation itself stands
        Console(stderr=True).print(
            f"warning: could not record the rotation: {safe(exc)}", markup=False
        )
