"""``[permissions.findings]``: the thresholds findings use, parsed and checked in one place.

::

    [permissions.findings]
    window = "90d"                  # how far back usage is read (--window overrides)
    dormant_days = 90               # no authentication or action for this long = dormant
    password_max_age_days = 365     # a password older than this is a finding
    key_max_age_days = 365          # an SSH key (or other credential entitlement) older than this
    shared_min_sources = 4          # distinct login sources that make an account look shared
    generic_min_sources = 2         # ... for generic names (root, admin, deploy, ...)
    generic_names = ["root", "admin", "deploy"]   # replaces the built-in list
    narrow_max_commands = 10        # recommend narrowing a broad grant used for at most this many
    scan_limit = 20000              # events read per principal and question, at most
    system_scan_limit = 1000000     # events read in one pass over a system's window

    [permissions.findings.events]   # which events belong to a system (a search query)
    "postgres:db-1:5432/app" = "target.system:postgres AND target.host:db-1"

Unknown keys are errors, so a misspelt threshold is never silently ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from keeptrail.errors import UserError
from keeptrail.query import QueryError, parse, parse_duration

DAY_US: Final = 86_400 * 1_000_000
GENERIC_NAMES: Final = (
    "root",
    "admin",
    "administrator",
    "deploy",
    "deployer",
    "ubuntu",
    "ec2-user",
    "centos",
    "debian",
    "postgres",
    "oracle",
    "test",
    "guest",
    "shared",
    "support",
    "ops",
    "service",
    "jenkins",
    "ansible",
)


@dataclass(frozen=True, slots=True)
class FindingsConfig:
    """Thresholds for findings; the defaults are what an auditor would ask first."""

    window_us: int = 90 * DAY_US
    dormant_days: int = 90
    password_max_age_days: int = 365
    key_max_age_days: int = 365
    shared_min_sources: int = 4
    generic_min_sources: int = 2
    generic_names: frozenset[str] = frozenset(GENERIC_NAMES)
    narrow_max_commands: int = 10
    scan_limit: int = 20_000
    system_scan_limit: int = 1_000_000
    events: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> FindingsConfig:
        """From the whole parsed configuration file (reads ``permissions.findings`` only)."""
        perms = config.get("permissions", {})
        table = perms.get("findings", {}) if isinstance(perms, Mapping) else {}
        if not isinstance(table, Mapping):
            raise UserError("[permissions.findings] must be a table")
        known = {
            "window",
            "dormant_days",
            "password_max_age_days",
            "key_max_age_days",
            "shared_min_sources",
            "generic_min_sources",
            "generic_names",
            "narrow_max_commands",
            "scan_limit",
            "system_scan_limit",
            "events",
        }
        unknown = sorted(set(table) - known)
        if unknown:
            raise UserError(
                f"[permissions.findings]: unknown key(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known))}"
            )
        values: dict[str, Any] = {}
        if "window" in table:
            values["window_us"] = parse_window(str(table["window"]))
        for name in (
            "dormant_days",
            "password_max_age_days",
            "key_max_age_days",
            "shared_min_sources",
            "generic_min_sources",
            "narrow_max_commands",
            "scan_limit",
            "system_scan_limit",
        ):
            if name in table:
                value = table[name]
                if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                    raise UserError(f"[permissions.findings] {name} must be a positive integer")
                values[name] = value
        if "generic_names" in table:
            names = table["generic_names"]
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise UserError("[permissions.findings] generic_names must be a list of strings")
            values["generic_names"] = frozenset(names)
        if "events" in table:
            values["events"] = _event_scopes(table["events"])
        return cls(**values)


def parse_window(text: str) -> int:
    """``90d`` / ``12h`` / ``2w`` as microseconds; a clear error otherwise."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise UserError(f"window: {exc}") from None


def _event_scopes(table: object) -> dict[str, str]:
    if not isinstance(table, Mapping):
        raise UserError("[permissions.findings.events] must be a table of system = query")
    out: dict[str, str] = {}
    for system, query in table.items():
        if not isinstance(query, str):
            raise UserError(f"[permissions.findings.events] {system!r} must be a query string")
        try:
            parse(query)
        except QueryError as exc:
            raise UserError(
                f"[permissions.findings.events] {system!r}: {exc.message} (at {exc.position})"
            ) from None
        out[str(system)] = query
    return out
