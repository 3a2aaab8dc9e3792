"""Running collectors: what to collect (CLI options or the ``[permissions]`` table), and saving.

The CLI (``keeptrail permissions collect``) and the agent's schedule both build a
:class:`CollectPlan` and call :func:`collect_and_save`; collectors stay pure of storage.

Configuration (``[permissions]`` in the agent's TOML, or in ``<data-dir>/keeptrail.toml``)::

    [permissions]
    collect_every = "24h"          # the agent collects this often (s, m, h, d); unset: never
    sources = ["linux"]            # linux | postgres | k8s
    root = "/"                     # linux: where the host's files are
    sudoers = "auto"               # auto (cvtsudoers when installed) | parser | cvtsudoers
    postgres_url = "$env:KEEPTRAIL_PG_AUDIT_URL"   # a reference: "$env:NAME" or "$file:PATH"
    k8s_json = "/var/lib/rbac-export.json"         # or k8s_api + k8s_token_file
    k8s_api = "https://10.0.0.1:6443"
    k8s_token_file = "/etc/keeptrail/k8s.token"
    k8s_ca_file = "/etc/keeptrail/k8s-ca.pem"
    k8s_cluster = "prod"
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from keeptrail.errors import UserError
from keeptrail.event import DetailValue, Event, uuid7
from keeptrail.permissions.model import Collected, Snapshot
from keeptrail.permissions.snapshots import SnapshotStore

__all__ = [
    "COLLECT_SOURCES",
    "CollectPlan",
    "PermissionsConfig",
    "collect",
    "collect_and_save",
    "parse_duration",
    "resolve_secret",
    "run_schedule",
    "snapshot_event",
]

log = logging.getLogger("keeptrail.permissions")

COLLECT_SOURCES: Final = ("linux", "postgres", "k8s", "import")
_DURATION: Final = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw]?)\Z")
_UNIT: Final = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(slots=True)
class CollectPlan:
    """What one collection run reads; a source is collected when its inputs are given."""

    sources: tuple[str, ...] = ("linux",)
    root: Path = Path("/")
    hostname: str | None = None
    sudoers: str = "auto"
    postgres_url: str | None = None
    k8s_json: Path | None = None
    k8s_api: str | None = None
    k8s_token_file: Path | None = None
    k8s_ca_file: Path | None = None
    k8s_cluster: str | None = None
    import_file: Path | None = None
    import_map: dict[str, str] = field(default_factory=dict)
    import_system: str | None = None


@dataclass(slots=True)
class PermissionsConfig:
    """The ``[permissions]`` table, validated."""

    collect_every: float | None
    plan: CollectPlan
    data_dir: Path | None = None  # where permissions.db is kept [agent: its state_dir]

    @classmethod
    def from_config(
        cls, table: Mapping[str, Any], *, base: Path | None = None
    ) -> PermissionsConfig:
        """Validate the table; relative paths are relative to ``base`` (the config's folder).

        Sub-tables (``[permissions.findings]``) belong to other modules and are left alone.
        """
        known = {
            "collect_every", "sources", "root", "hostname", "sudoers", "postgres_url",
            "k8s_json", "k8s_api", "k8s_token_file", "k8s_ca_file", "k8s_cluster", "data_dir",
        }  # fmt: skip
        unknown = sorted(k for k in set(table) - known if not isinstance(table[k], dict))
        if unknown:
            raise UserError(f"[permissions]: unknown setting {unknown[0]!r}")
        every = table.get("collect_every")
        sources = table.get("sources", ["linux"])
        if not isinstance(sources, list) or not all(s in COLLECT_SOURCES[:3] for s in sources):
            raise UserError("[permissions] sources must be a list of linux, postgres, k8s")
        url = table.get("postgres_url")
        reference = url is not None and str(url).startswith(("$env:", "$file:"))
        if url is not None and not reference and urlsplit(str(url)).password:
            raise UserError(
                "[permissions] postgres_url holds a password: use a reference"
                ' ("$env:NAME" or "$file:/path") or a password file (PGPASSFILE)'
            )

        def path(key: str) -> Path | None:
            value = table.get(key)
            if value in (None, ""):
                return None
            p = Path(str(value)).expanduser()
            return p if p.is_absolute() or base is None else base / p

        plan = CollectPlan(
            sources=tuple(sources),
            root=path("root") or Path("/"),
            hostname=table.get("hostname"),
            sudoers=str(table.get("sudoers", "auto")),
            postgres_url=None if url is None else str(url),
            k8s_json=path("k8s_json"),
            k8s_api=table.get("k8s_api"),
            k8s_token_file=path("k8s_token_file"),
            k8s_ca_file=path("k8s_ca_file"),
            k8s_cluster=table.get("k8s_cluster"),
        )
        if "postgres" in plan.sources and not plan.postgres_url:
            raise UserError("[permissions] sources has postgres: postgres_url is required")
        if "k8s" in plan.sources and not (plan.k8s_json or plan.k8s_api):
            raise UserError("[permissions] sources has k8s: k8s_json or k8s_api is required")
        every_seconds = None if every is None else parse_duration(str(every))
        return cls(every_seconds, plan, path("data_dir"))


def parse_duration(text: str) -> float:
    """``"24h"``, ``"30m"``, ``"7d"``, ``"90s"`` or a number of seconds."""
    m = _DURATION.match(text.strip())
    if not m or float(m.group(1)) <= 0:
        raise UserError(f"{text!r} is not a duration (like 30m, 24h, 7d)")
    return float(m.group(1)) * _UNIT[m.group(2)]


def resolve_secret(value: str, *, what: str) -> str:
    """``$env:NAME`` / ``$file:PATH`` references resolved; anything else is taken as is."""
    if value.startswith("$env:"):
        found = os.environ.get(value[5:])
        if not found:
            raise UserError(f"{what}: environment variable {value[5:]} is not set")
        return found.strip()
    if value.startswith("$file:"):
        try:
            return Path(value[6:]).expanduser().read_text().strip()
        except OSError as exc:
            raise UserError(f"{what}: cannot read {value[6:]}: {exc.strerror}") from None
    return value


def collect(plan: CollectPlan) -> list[Collected]:
    """Run the plan's collectors (imports are deferred: only the needed ones load)."""
    out: list[Collected] = []
    for source in plan.sources:
        if source == "linux":
            from keeptrail.permissions.collectors.linux import collect_linux  # noqa: PLC0415

            if not plan.root.is_dir():
                raise UserError(f"--root {plan.root} is not a directory")
            out.append(collect_linux(plan.root, hostname=plan.hostname, sudoers=plan.sudoers))
        elif source == "postgres":
            from keeptrail.permissions.collectors.postgres import collect_postgres  # noqa: PLC0415

            if not plan.postgres_url:
                raise UserError("--source postgres needs --postgres URL")
            out.append(collect_postgres(resolve_secret(plan.postgres_url, what="postgres URL")))
        elif source == "k8s":
            out.append(_collect_k8s(plan))
        elif source == "import":
            from keeptrail.permissions.collectors.importer import collect_import  # noqa: PLC0415

            if plan.import_file is None:
                raise UserError("--source import needs --import FILE")
            system = f"import:{plan.import_system or plan.import_file.stem}"
            out.append(collect_import(plan.import_file, plan.import_map, system=system))
        else:
            raise UserError(f"unknown source {source!r} ({', '.join(COLLECT_SOURCES)})")
    return out


def _collect_k8s(plan: CollectPlan) -> Collected:
    from keeptrail.permissions.collectors.k8s_rbac import (  # noqa: PLC0415
        collect_k8s,
        fetch_rbac,
        load_rbac_json,
    )

    warnings: list[str] = []
    if plan.k8s_json is not None:
        objects = load_rbac_json(plan.k8s_json)
        cluster = plan.k8s_cluster or plan.k8s_json.stem
    elif plan.k8s_api:
        if not plan.k8s_api.startswith(("https://", "http://")):
            raise UserError("--k8s-api must be an http(s):// URL")
        if plan.k8s_token_file is None:
            raise UserError("--k8s-api needs --token-file (a bearer token, file mode 0600)")
        try:
            token = plan.k8s_token_file.read_text().strip()
            mode = plan.k8s_token_file.stat().st_mode
        except OSError as exc:
            raise UserError(f"cannot read {plan.k8s_token_file}: {exc.strerror}") from None
        if mode & 0o077:
            warnings.append(f"token file {plan.k8s_token_file} is readable by others: chmod 600 it")
        objects = fetch_rbac(plan.k8s_api, token, ca_file=plan.k8s_ca_file)
        cluster = plan.k8s_cluster or (urlsplit(plan.k8s_api).hostname or "cluster")
    else:
        raise UserError("--source k8s needs --k8s-json FILE or --k8s-api URL --token-file F")
    result = collect_k8s(objects, cluster=cluster)
    return replace(result, warnings=(*warnings, *result.warnings))


def collect_and_save(
    store: SnapshotStore, plan: CollectPlan
) -> list[tuple[Snapshot, tuple[str, ...]]]:
    """Collect, store each snapshot (first_seen filled), return them with their warnings."""
    return [(store.save(r.snapshot), r.warnings) for r in collect(plan)]


def run_schedule(
    config: PermissionsConfig,
    open_store: Callable[[], SnapshotStore],
    stop: threading.Event,
    on_saved: Callable[[Sequence[Snapshot]], object] | None = None,
) -> None:
    """Collect now, then every ``collect_every`` seconds until ``stop`` is set.

    A failed run is logged and retried at the next tick: one unreachable database must not
    stop the agent, nor the other sources.
    """
    if config.collect_every is None:
        return
    while not stop.is_set():
        snapshots: list[Snapshot] = []
        for source in config.plan.sources:
            plan = replace(config.plan, sources=(source,))
            try:
                store = open_store()
                try:
                    for snapshot, warnings in collect_and_save(store, plan):
                        for warning in warnings:
                            log.warning("%s: %s", snapshot.system, warning)
                        snapshots.append(snapshot)
                finally:
                    store.close()
            except (UserError, OSError, ValueError) as exc:
                log.error("permissions collection (%s) failed: %s", source, exc)
        if snapshots and on_saved is not None:
            on_saved(snapshots)
        stop.wait(config.collect_every)


def snapshot_event(snapshot: Snapshot, *, host: str) -> Event:
    """A ``permissions.snapshot`` audit event: the server learns that a collection ran."""
    now = time.time_ns() // 1000
    details: dict[str, DetailValue] = {
        "snapshot": snapshot.id,
        "system": snapshot.system,
        "source": snapshot.source,
        "accounts": len(snapshot.accounts),
        "entitlements": len(snapshot.entitlements),
        "privileged": sum(1 for e in snapshot.entitlements if e.privileged),
    }
    return Event(
        time=snapshot.taken_at,
        ingested_at=now,
        category="audit",
        action="permissions.snapshot",
        outcome="success",
        target_host=host,
        target_system=snapshot.system,
        target_resource=snapshot.id,
        target_resource_type="permissions_snapshot",
        details=details,
        collector_host=host,
        collector_source="agent",
        collector_parser="agent",
        raw=(
            f"permissions snapshot of {snapshot.system}: {details['accounts']} accounts,"
            f" {details['entitlements']} entitlements, {details['privileged']} privileged"
        ),
        id=uuid7(),
    )
