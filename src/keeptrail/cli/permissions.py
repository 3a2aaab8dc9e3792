"""``keeptrail permissions``: collect entitlement snapshots, list and show them, import a roster.

A thin shell over :mod:`keeptrail.permissions`: options become a
:class:`~keeptrail.permissions.collect.CollectPlan`, the library collects and stores, this
module prints. Everything shown comes from audited systems (user names, key comments, sudoers
text), so every cell goes through :func:`~keeptrail.cli.output.safe`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.table import Table
from rich.text import Text

from keeptrail.cli.common import DataDir
from keeptrail.cli.output import make_console, safe
from keeptrail.config import config_path, default_data_dir, load_config_file
from keeptrail.errors import UserError
from keeptrail.permissions.collect import (
    COLLECT_SOURCES,
    CollectPlan,
    PermissionsConfig,
    collect_and_save,
)
from keeptrail.permissions.model import Entitlement, Snapshot, entitlement_key
from keeptrail.permissions.snapshots import SnapshotStore, open_snapshots

permissions_app = typer.Typer(
    help="Permission audits: who can do what (entitlement snapshots).", no_args_is_help=True
)
roster_app = typer.Typer(help="The roster of people still employed (for orphan findings).")
permissions_app.add_typer(roster_app, name="roster")

AsJson = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _store(data_dir: Path | None) -> SnapshotStore:
    return open_snapshots(data_dir or default_data_dir())


@permissions_app.command("collect")
def collect(
    source: Annotated[
        list[str] | None,
        typer.Option(
            "--source",
            "-s",
            help=f"{', '.join(COLLECT_SOURCES)} (repeat for several) [default: linux].",
        ),
    ] = None,
    root: Annotated[
        Path, typer.Option(help="linux: the host's root directory (a mounted image works too).")
    ] = Path("/"),
    hostname: Annotated[
        str | None, typer.Option(help="linux: host name [default: <root>/etc/hostname].")
    ] = None,
    sudoers: Annotated[
        str, typer.Option(help="linux: auto (cvtsudoers when installed), parser or cvtsudoers.")
    ] = "auto",
    postgres: Annotated[
        str | None,
        typer.Option(
            "--postgres",
            envvar="KEEPTRAIL_PERMISSIONS_POSTGRES_URL",
            help='postgres: URL, or "$env:NAME" / "$file:PATH" holding it.',
        ),
    ] = None,
    k8s_json: Annotated[
        Path | None,
        typer.Option(help="k8s: a `kubectl get roles,rolebindings,... -A -o json` file."),
    ] = None,
    k8s_api: Annotated[str | None, typer.Option(help="k8s: the API server's base URL.")] = None,
    token_file: Annotated[
        Path | None, typer.Option(help="k8s: file holding the API bearer token.")
    ] = None,
    k8s_ca: Annotated[Path | None, typer.Option(help="k8s: CA bundle for the API server.")] = None,
    cluster: Annotated[str | None, typer.Option(help="k8s: the cluster's name.")] = None,
    import_file: Annotated[
        Path | None, typer.Option("--import", help="import: a CSV or JSON export.")
    ] = None,
    mapping: Annotated[
        list[str] | None,
        typer.Option("--map", help="import: FIELD=COLUMN[,FIELD=COLUMN...] (see docs)."),
    ] = None,
    system: Annotated[
        str | None, typer.Option(help="import: the system's name [default: the file's name].")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Configuration file [default: <data-dir>/keeptrail.toml]."),
    ] = None,
    as_json: AsJson = False,
    data_dir: DataDir = None,
) -> None:
    """Collect entitlement snapshots and store them with their time.

    Without --source (or a source's own option), the [permissions] table of the configuration
    file says what to collect; without one either, this host (linux).

    Example: keeptrail permissions collect --source linux --source postgres --postgres '$env:PGURL'
    """
    from keeptrail.permissions.collectors.importer import (  # noqa: PLC0415
        ENTITLEMENT_FIELDS,
        parse_mapping,
    )

    directory = data_dir or default_data_dir()
    implied = _implied_sources(k8s_json, k8s_api, import_file, postgres)
    sources = tuple(source or implied or ["linux"])
    for s in sources:
        if s not in COLLECT_SOURCES:
            raise UserError(f"--source {s!r}: one of {', '.join(COLLECT_SOURCES)}")
    table = load_config_file(directory, config).get("permissions")
    configured = None
    if not source and not implied and isinstance(table, dict):
        path = config_path(directory, config)
        configured = PermissionsConfig.from_config(table, base=path.parent).plan
    plan = configured or CollectPlan(
        sources=sources,
        root=root,
        hostname=hostname,
        sudoers=sudoers,
        postgres_url=postgres,
        k8s_json=k8s_json,
        k8s_api=k8s_api,
        k8s_token_file=token_file,
        k8s_ca_file=k8s_ca,
        k8s_cluster=cluster,
        import_file=import_file,
        import_map=parse_mapping(mapping or [], ENTITLEMENT_FIELDS),
        import_system=system,
    )
    store = open_snapshots(directory)
    try:
        saved = collect_and_save(store, plan)
    finally:
        store.close()
    if as_json:
        typer.echo(
            orjson.dumps(
                [_summary_json(s) | {"warnings": list(w)} for s, w in saved],
                option=orjson.OPT_INDENT_2,
            ).decode()
        )
        return
    console = make_console()
    for snapshot, warnings in saved:
        for w in warnings:
            typer.echo(f"warning: {safe(w)}", err=True)
        accounts = len(snapshot.accounts)
        entitlements = len(snapshot.entitlements)
        privileged = sum(1 for e in snapshot.entitlements if e.privileged)
        holders = len({e.principal for e in snapshot.entitlements if e.privileged})
        console.print(
            Text(
                f"{safe(snapshot.system)}: {accounts} accounts, {entitlements} entitlements, "
                f"{privileged} privileged (held by {holders} principals) — snapshot {snapshot.id}"
            )
        )


def _implied_sources(
    k8s_json: Path | None, k8s_api: str | None, import_file: Path | None, postgres: str | None
) -> list[str]:
    """A source's own option names the source: --k8s-json alone means --source k8s."""
    given = (("k8s", k8s_json or k8s_api), ("import", import_file), ("postgres", postgres))
    return [name for name, value in given if value]


@permissions_app.command("snapshots")
def snapshots(
    system: Annotated[str | None, typer.Option(help="Only this system (linux:web-1, ...).")] = None,
    source: Annotated[str | None, typer.Option(help="Only this source.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 50,
    as_json: AsJson = False,
    data_dir: DataDir = None,
) -> None:
    """List stored snapshots, newest first.

    Example: keeptrail permissions snapshots --source linux
    """
    store = _store(data_dir)
    try:
        found = store.list(system=system, source=source, limit=limit)
    finally:
        store.close()
    if as_json:
        typer.echo(
            orjson.dumps(
                [
                    {
                        "id": s.id,
                        "system": s.system,
                        "source": s.source,
                        "taken_at": _iso(s.taken_at),
                        "accounts": s.accounts,
                        "entitlements": s.entitlements,
                        "privileged": s.privileged,
                    }
                    for s in found
                ],
                option=orjson.OPT_INDENT_2,
            ).decode()
        )
        return
    table = Table(header_style="bold")
    for column in ("id", "taken", "system", "source", "accounts", "entitlements", "privileged"):
        table.add_column(column)
    for s in found:
        table.add_row(
            *(Text(safe(v)) for v in (s.id, _iso(s.taken_at), s.system, s.source)),
            str(s.accounts),
            str(s.entitlements),
            str(s.privileged),
        )
    make_console().print(table)


@permissions_app.command("show")
def show(
    snapshot_id: Annotated[
        str, typer.Argument(help="A snapshot id (or a unique prefix), or 'latest'.")
    ] = "latest",
    system: Annotated[str | None, typer.Option(help="With 'latest': of this system.")] = None,
    source: Annotated[str | None, typer.Option(help="With 'latest': of this source.")] = None,
    principal: Annotated[str | None, typer.Option(help="Only this principal's rights.")] = None,
    privileged: Annotated[
        bool, typer.Option("--privileged", help="Only privileged entitlements.")
    ] = False,
    changes: Annotated[
        bool, typer.Option("--changes", help="Only what was gained or lost since the previous.")
    ] = False,
    as_json: AsJson = False,
    data_dir: DataDir = None,
) -> None:
    """Show a snapshot's entitlements (and accounts with --json).

    Example: keeptrail permissions show latest --system linux:web-1 --privileged
    """
    store = _store(data_dir)
    try:
        snap = _pick(store, snapshot_id, system, source)
        previous = store.previous(snap) if changes else None
    finally:
        store.close()
    rows: list[tuple[str, Entitlement]] = [("", e) for e in snap.entitlements]
    if changes:
        before = {entitlement_key(e): e for e in previous.entitlements} if previous else {}
        now = {entitlement_key(e) for e in snap.entitlements}
        rows = [("+", e) for e in snap.entitlements if entitlement_key(e) not in before]
        rows += [("-", e) for k, e in before.items() if k not in now]
    rows = [
        (c, e)
        for c, e in rows
        if (principal is None or e.principal == principal) and (not privileged or e.privileged)
    ]
    if as_json:
        doc = _summary_json(snap) | {
            "previous": previous.id if previous else None,
            "accounts": [_jsonable(a) for a in snap.accounts] if not changes else [],
            "entitlements": [_jsonable(e) | ({"change": c} if c else {}) for c, e in rows],
        }
        typer.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
        return
    table = Table(
        title=safe(f"{snap.system} at {_iso(snap.taken_at)} ({snap.id})"), header_style="bold"
    )
    columns = ("principal", "kind", "privilege", "scope", "granted via", "priv", "first seen")
    if changes:
        table.add_column("±")
    for column in columns:
        table.add_column(column)
    for c, e in rows:
        cells = [
            Text(safe(v))
            for v in (
                e.principal,
                e.principal_kind,
                e.privilege,
                e.scope,
                e.granted_via,
                "yes" if e.privileged else "",
                _iso(e.first_seen) if e.first_seen else "",
            )
        ]
        table.add_row(*([Text(c)] if changes else []), *cells)
    make_console().print(table)


def _pick(
    store: SnapshotStore, snapshot_id: str, system: str | None, source: str | None
) -> Snapshot:
    if snapshot_id != "latest":
        return store.get(snapshot_id)
    found = store.latest(system=system, source=source)
    if found is None:
        raise UserError("no snapshot yet: run keeptrail permissions collect")
    return found


@roster_app.command("import")
def roster_import(
    file: Annotated[Path, typer.Argument(help="CSV or JSON export from HR or the directory.")],
    mapping: Annotated[
        list[str] | None,
        typer.Option(
            "--map", help="FIELD=COLUMN: person, email, display_name, usernames, active, left_at."
        ),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Import the roster of people (who is still employed); the latest import is current.

    Example: keeptrail permissions roster import hr.csv --map person=employee_id,active=status
    """
    from keeptrail.permissions.collectors.importer import (  # noqa: PLC0415
        ROSTER_FIELDS,
        parse_mapping,
        read_roster,
    )

    entries = read_roster(file, parse_mapping(mapping or [], ROSTER_FIELDS))
    store = _store(data_dir)
    try:
        imported = store.import_roster(entries, source=str(file))
    finally:
        store.close()
    active = sum(1 for e in entries if e.active)
    typer.echo(
        f"roster {imported.id}: {len(entries)} people, {active} active, "
        f"{len(entries) - active} gone",
        err=True,
    )


@roster_app.command("show")
def roster_show(as_json: AsJson = False, data_dir: DataDir = None) -> None:
    """Show the current roster.

    Example: keeptrail permissions roster show --json
    """
    store = _store(data_dir)
    try:
        roster = store.roster()
    finally:
        store.close()
    if roster is None:
        raise UserError("no roster imported yet: keeptrail permissions roster import FILE")
    if as_json:
        doc = {
            "id": roster.id,
            "source": roster.source,
            "imported_at": _iso(roster.imported_at),
            "entries": [_jsonable(e) for e in roster.entries],
        }
        typer.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
        return
    table = Table(title=safe(f"roster {roster.id} from {roster.source}"), header_style="bold")
    for column in ("person", "email", "name", "usernames", "active", "left"):
        table.add_column(column)
    for e in roster.entries:
        table.add_row(
            *(
                Text(safe(v))
                for v in (
                    e.person,
                    e.email or "",
                    e.display_name or "",
                    ",".join(e.usernames),
                    "yes" if e.active else "no",
                    _iso(e.left_at) if e.left_at else "",
                )
            )
        )
    make_console().print(table)


def _summary_json(s: Snapshot) -> dict[str, object]:
    return {
        "id": s.id,
        "system": s.system,
        "source": s.source,
        "taken_at": _iso(s.taken_at),
        "accounts_count": len(s.accounts),
        "entitlements_count": len(s.entitlements),
        "privileged_count": sum(1 for e in s.entitlements if e.privileged),
    }


def _jsonable(obj: object) -> dict[str, object]:
    out: dict[str, object] = {}
    for name in obj.__slots__:  # type: ignore[attr-defined]
        value = getattr(obj, name)
        out[name] = dict(value) if name == "attributes" else value
    return out


def _iso(us: int | None) -> str:
    if us is None:
        return ""
    return (
        datetime.fromtimestamp(us / 1_000_000, UTC)
        .isoformat(timespec="seconds")
        .replace("+00:00", "Z")
    )
