"""Check the whole configuration file before a server starts, with each capability's own parser.

Every capability validates its own table where it is used (``[protect]`` when the store opens,
``[detect]`` when the engine starts, ``[notify]`` when the notifier attaches ...). Inside the
server those places run in the ASGI lifespan, where an error becomes uvicorn's startup
traceback; this module runs the same validators up front so that ``keeptrail serve`` and
``keeptrail config check`` can say what is wrong in one line and exit 2. No validation rule
lives here: only calls to the capabilities' own parsers, in the order the server opens them,
plus warnings for settings that parse but would do nothing.

Nothing is written: no store, keyring, ``detect.db`` or outbox is created, and no network
connection is made (secrets referenced by ``$env:``/``$file:`` are read, as the server would).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

from keeptrail.config import config_path as find_config
from keeptrail.config import load_config_file
from keeptrail.detect.config import detect_config
from keeptrail.detect.rules import load_rule_set
from keeptrail.detect.runtime import open_geoip
from keeptrail.errors import UserError
from keeptrail.notify.config import notify_config
from keeptrail.permissions.collect import PermissionsConfig
from keeptrail.permissions.findings_config import FindingsConfig
from keeptrail.protect.kek import KekConfig
from keeptrail.protect.keyring import encryption_enabled, protect_table
from keeptrail.protect.projection import clear_fields_from_config
from keeptrail.protect.retention import RetentionPolicies

# Tables some part of Keeptrail reads; anything else at the top level is probably a typo.
KNOWN_TABLES: Final = frozenset(
    {
        "server",
        "agent",
        "spool",
        "sources",
        "protect",
        "retention",
        "detect",
        "notify",
        "permissions",
    }
)
# [protect] keys read by keeptrail.protect (keyring.py, kek.py, projection.py).
PROTECT_KEYS: Final = frozenset({"encrypt", "clear_fields", "kek", "kek_command", "kek_timeout"})

Config = Mapping[str, Any]
Check = Callable[[Path, Config, Path], list[str]]


def check_config(data_dir: Path, config_path: Path | None = None) -> list[str]:
    """Validate every table of the configuration; the warnings, or ``UserError`` on the first error.

    ``config_path`` is ``--config`` (``None``: ``$KEEPTRAIL_CONFIG``, else
    ``<data-dir>/keeptrail.toml``; no file at all is a valid, empty configuration). The error
    message is one line that names the file.
    """
    path = find_config(data_dir, config_path)
    config = load_config_file(data_dir, config_path)  # a missing explicit file is a UserError
    warnings = [
        f"unknown top-level {'table' if isinstance(config[name], dict) else 'key'} {name!r} "
        f"is ignored (known tables: {', '.join(sorted(KNOWN_TABLES))})"
        for name in sorted(config)
        if name not in KNOWN_TABLES
    ]
    for section, check in CHECKS:
        try:
            warnings.extend(check(data_dir, config, path))
        except (UserError, ValueError, TypeError, OSError) as exc:
            raise UserError(f"{path}: {_one_line(exc, section)}") from None
    return warnings


def _one_line(exc: BaseException, section: str) -> str:
    """The error as one line, prefixed with its table when the message does not name it."""
    text = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    text = text or type(exc).__name__
    return text if section in text else f"[{section}] {text}"


def _protect(data_dir: Path, config: Config, path: Path) -> list[str]:
    table = protect_table(config)
    encryption_enabled(config)
    clear_fields_from_config(config)
    KekConfig.from_protect(table)
    unknown = sorted(set(table) - PROTECT_KEYS)
    return [
        f"[protect] unknown key {key!r} is ignored (known: {', '.join(sorted(PROTECT_KEYS))})"
        for key in unknown
    ]


def _retention(data_dir: Path, config: Config, path: Path) -> list[str]:
    policies = RetentionPolicies.from_config(config)
    if policies.shipped:  # the documented defaults: `keeptrail retention` explains their trade-off
        return []
    return [str(w) for w in policies.warnings()]


def _detect(data_dir: Path, config: Config, path: Path) -> list[str]:
    cfg = detect_config(dict(config))
    if not cfg.enabled:
        return []
    warnings = [
        f"[detect] rules_dirs: {d} is not a directory (no rules are read from it)"
        for d in cfg.rules_dirs
        if not d.is_dir()
    ]
    # Every rule file parsed and checked, ids unique: what runtime.site_rules loads.
    ids = {r.id for r in load_rule_set(cfg.all_rule_dirs(data_dir), include_pack=cfg.pack)}
    warnings.extend(
        f"[detect] disabled: no rule has the id {rule_id!r}"
        for rule_id in sorted(cfg.disabled - ids)
    )
    if not ids - cfg.disabled:
        warnings.append("[detect] no rule is enabled: detection will raise nothing")
    geo = open_geoip(cfg)
    if geo is not None:
        geo.close()
    return warnings


def _notify(data_dir: Path, config: Config, path: Path) -> list[str]:
    cfg = notify_config(dict(config))  # secrets are read (and checked) here, never shown
    if cfg.sinks and not detect_config(dict(config)).enabled:
        return ["[notify] has sinks but [detect] enabled = false: no alert will be delivered"]
    return []


def _permissions(data_dir: Path, config: Config, path: Path) -> list[str]:
    table = config.get("permissions")
    if table is None:
        return []
    if not isinstance(table, dict):
        raise UserError("[permissions] must be a table")
    PermissionsConfig.from_config(table, base=path.parent)
    FindingsConfig.from_config(config)
    return []


# In the order the server opens them: store (protect, retention), engine, notifier, routes.
CHECKS: Final[tuple[tuple[str, Check], ...]] = (
    ("protect", _protect),
    ("retention", _retention),
    ("detect", _detect),
    ("notify", _notify),
    ("permissions", _permissions),
)
