"""The agent's configuration file (TOML), read with the standard library's ``tomllib``.

Every setting and an example are in docs/agent.md. Relative paths are relative to the
configuration file. Secrets are references, never literals: ``token = "$env:NAME"`` or
``token = "$file:/etc/keeptrail/agent.token"`` (as in the server's configuration);
``$KEEPTRAIL_AGENT_TOKEN`` overrides the file (precedence: environment > configuration file).
"""

from __future__ import annotations

import os
import socket
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keeptrail.agent.shipper import ShipperSettings
from keeptrail.config import resolve_timezone
from keeptrail.errors import UserError
from keeptrail.parsers.formats import format_names
from keeptrail.permissions.collect import PermissionsConfig
from keeptrail.sources.journald import JournalSettings
from keeptrail.sources.syslog_listener import SyslogSettings
from keeptrail.sources.tail import TailSettings

TOKEN_ENV = "KEEPTRAIL_AGENT_TOKEN"  # noqa: S105 — the variable's name, not a secret


@dataclass(slots=True)
class AgentConfig:
    """Everything ``keeptrail agent`` needs, already validated."""

    state_dir: Path
    host: str
    shipper: ShipperSettings
    heartbeat_seconds: float = 60.0
    status_seconds: float = 5.0
    spool_max_events: int = 1_000_000
    spool_max_bytes: int = 1 << 30
    files: list[TailSettings] = field(default_factory=list)
    journals: list[JournalSettings] = field(default_factory=list)
    syslogs: list[SyslogSettings] = field(default_factory=list)
    permissions: PermissionsConfig | None = None  # [permissions]: scheduled collection


def load_config(path: Path, *, local: bool = False) -> AgentConfig:
    """Read and validate a configuration file; problems are :class:`UserError` s.

    ``local`` is single-node mode (``keeptrail serve --collect``): events go straight into the
    server's own store, so the ``[server]`` table (URL, token) is not needed.
    """
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UserError(f"{path}: {exc}") from exc
    return parse_config(data, base=path.parent, local=local)


def parse_config(data: dict[str, Any], *, base: Path, local: bool = False) -> AgentConfig:
    """Build the configuration from parsed TOML; ``base`` anchors relative paths."""
    agent = _table(data, "agent")
    server = _table(data, "server")
    spool = _table(data, "spool")
    state_dir = _path(base, agent.get("state_dir", "/var/lib/keeptrail-agent"))
    if "url" not in server and not local:
        raise UserError("[server] url is required (e.g. https://keeptrail.example:8443)")
    shipper = ShipperSettings(
        url=str(server.get("url", "local:")),
        token="" if local else _token(server.get("token"), base),
        dead_letter_dir=state_dir / "dead-letter",
        ca_file=_opt_path(base, server.get("ca_file")),
        client_cert=_opt_path(base, server.get("client_cert")),
        client_key=_opt_path(base, server.get("client_key")),
        batch_size=int(server.get("batch_size", 1000)),
        batch_bytes=int(server.get("batch_bytes", 4 << 20)),
        linger=min(1.0, float(server.get("linger_seconds", 0.2))),
        timeout=float(server.get("timeout_seconds", 30)),
        backoff_initial=float(server.get("backoff_initial_seconds", 0.5)),
        backoff_max=float(server.get("backoff_max_seconds", 30)),
        auth_retry=float(server.get("auth_retry_seconds", 60)),
    )
    config = AgentConfig(
        state_dir=state_dir,
        host=str(agent.get("host") or socket.gethostname()),
        shipper=shipper,
        heartbeat_seconds=float(agent.get("heartbeat_seconds", 60)),
        status_seconds=float(agent.get("status_seconds", 5)),
        spool_max_events=int(spool.get("max_events", 1_000_000)),
        spool_max_bytes=int(spool.get("max_bytes", 1 << 30)),
    )
    if "permissions" in data:
        config.permissions = PermissionsConfig.from_config(_table(data, "permissions"), base=base)
    names: set[str] = set()
    for i, src in enumerate(data.get("sources", [])):
        kind = src.get("type", "file")
        name = str(src.get("name") or f"{kind}-{i}")
        if name in names:
            raise UserError(f"two sources are named {name!r}: names must be unique")
        names.add(name)
        tz = resolve_timezone(src.get("timezone"))
        if kind == "file":
            fmt = str(src.get("format", "auto"))
            if fmt not in format_names():
                raise UserError(f"source {name}: unknown format {fmt!r}")
            paths = src.get("paths") or []
            if not paths:
                raise UserError(f"source {name}: paths (a list of globs) is required")
            config.files.append(
                TailSettings(
                    name=name,
                    paths=[str(_path(base, p)) for p in paths],
                    fmt=fmt,
                    start_at=_start_at(name, src.get("start_at", "beginning")),
                    poll_seconds=float(src.get("poll_seconds", 0.25)),
                    rotate_wait=float(src.get("rotate_wait_seconds", 5)),
                    batch_size=int(src.get("batch_size", 1000)),
                    tz=tz,
                )
            )
        elif kind == "journald":
            config.journals.append(
                JournalSettings(
                    name=name,
                    command=str(src.get("command", "journalctl")),
                    args=[str(a) for a in src.get("args", [])],
                    start_at=_start_at(name, src.get("start_at", "end")),
                    tz=tz,
                )
            )
        elif kind == "syslog":
            config.syslogs.append(
                SyslogSettings(
                    name=name,
                    udp=[str(a) for a in src.get("udp", [])],
                    tcp=[str(a) for a in src.get("tcp", [])],
                    tls=[str(a) for a in src.get("tls", [])],
                    tls_cert=_opt_path(base, src.get("tls_cert")),
                    tls_key=_opt_path(base, src.get("tls_key")),
                    tls_client_ca=_opt_path(base, src.get("tls_client_ca")),
                    max_message=int(src.get("max_message_bytes", 64 * 1024)),
                    tz=tz,
                )
            )
        else:
            raise UserError(f"source {name}: unknown type {kind!r} (file, journald, syslog)")
    return config


def _table(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise UserError(f"[{key}] must be a table")
    return value


def _token(ref: object, base: Path) -> str:
    env = os.environ.get(TOKEN_ENV)
    if env:
        return env.strip()
    if isinstance(ref, str) and ref.startswith(("$env:", "$file:")):  # the server's form
        kind, _, name = ref.partition(":")
        ref = {kind: name}
    if isinstance(ref, dict) and "$env" in ref:
        value = os.environ.get(str(ref["$env"]))
        if not value:
            raise UserError(f"[server] token: environment variable {ref['$env']} is not set")
        return value.strip()
    if isinstance(ref, dict) and "$file" in ref:
        try:
            return _path(base, ref["$file"]).read_text().strip()
        except OSError as exc:
            raise UserError(f"[server] token: cannot read {ref['$file']}: {exc}") from exc
    if isinstance(ref, str):
        raise UserError(
            "[server] token must be a reference, not the secret itself:"
            ' token = "$env:KEEPTRAIL_AGENT_TOKEN" or token = "$file:/etc/keeptrail/agent.token"'
        )
    raise UserError(f"[server] token is required (or set ${TOKEN_ENV})")


def _start_at(name: str, value: object) -> str:
    if value not in ("beginning", "end"):
        raise UserError(f"source {name}: start_at must be 'beginning' or 'end', not {value!r}")
    return str(value)


def _path(base: Path, value: object) -> Path:
    path = Path(str(value)).expanduser()
    return path if path.is_absolute() else base / path


def _opt_path(base: Path, value: object) -> Path | None:
    return None if value in (None, "") else _path(base, value)
