"""Retention policies: which class an event is stored in, and how long each class is kept.

A policy names a *retention class* (``database``, ``authentication``...) and the events that
belong to it (by category, action pattern, or collector source/parser); the first policy that
matches an event wins, anything else is in the class ``default``. The store calls
:meth:`RetentionPolicies.classify` on every event it appends to pick the event's partition
(``p<YYYYMMDD>_<class>``), so classification is cached per distinct
``(category, action, collector.source, collector.parser)``: ingest pays one dict lookup.

A partition's class is fixed when its events are stored. When policies change later, a
partition keeps its class and is judged by that class's *current* policy; a class whose policy
was removed falls back to ``default_days``. Nothing here reads a file or the clock:
:func:`load_policies` is the one edge, and :mod:`keeptrail.protect.plan` takes ``now``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from keeptrail.config import load_config_file
from keeptrail.errors import UserError
from keeptrail.event import CATEGORIES, Event

# The same as keeptrail.store.partitioning's (a test holds them together); not imported from
# there because the store imports this module to classify events.
DEFAULT_CLASS: Final = "default"
CLASS_NAME: Final = re.compile(r"[a-z][a-z0-9_]{0,31}")
MAX_DAYS: Final = 36_500  # a century: beyond this, "keep forever" is what is meant
_CACHE_LIMIT: Final = 4096  # distinct (category, action, source, parser) tuples remembered

_TOP_KEYS: Final = frozenset({"default_days", "compliance", "policy"})
_POLICY_KEYS: Final = frozenset({"name", "days", "category", "action", "source"})
_ACTION_PATTERN: Final = re.compile(r"[A-Za-z0-9_.*:-]{1,128}")


@dataclass(frozen=True, slots=True)
class ComplianceMinimum:
    """A published minimum retention for audit logs, precise enough to warn against."""

    key: str
    days: int
    text: str


# Only rules that state a number of months for audit logs. HIPAA's six years
# (45 CFR 164.316(b)(2)) is for policies and documentation, not logs, so it is not here.
COMPLIANCE_MINIMUMS: Final[dict[str, ComplianceMinimum]] = {
    "pci_dss": ComplianceMinimum(
        "pci_dss",
        365,
        "PCI DSS v4.0 requirement 10.5.1 (audit log history kept at least 12 months, "
        "the latest 3 months immediately available)",
    ),
    "omb_m_21_31": ComplianceMinimum(
        "omb_m_21_31",
        913,
        "OMB M-21-31 (US federal agencies: 12 months in active storage and 18 more in cold "
        "storage, 30 months in all)",
    ),
}
DEFAULT_COMPLIANCE: Final = ("pci_dss",)


@dataclass(frozen=True, slots=True)
class Policy:
    """One retention class: how long it is kept and which events belong to it.

    An event matches when it matches every criterion given (category AND action AND source),
    each criterion being any of its values. ``source`` is compared with both
    ``collector.source`` (file, syslog, journald, agent...) and ``collector.parser``
    (postgres, auditd, sshd...). Action patterns may use ``*`` (``db.*``).
    """

    name: str
    days: int
    categories: frozenset[str] = frozenset()
    actions: tuple[str, ...] = ()
    sources: frozenset[str] = frozenset()
    _action_re: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def matches(self, category: str, action: str, source: str | None, parser: str | None) -> bool:
        """Whether an event with these values belongs to this class."""
        if self.categories and category not in self.categories:
            return False
        if self._action_re is not None and not self._action_re.fullmatch(action):
            return False
        return not self.sources or source in self.sources or parser in self.sources


def _action_regex(patterns: Sequence[str]) -> re.Pattern[str] | None:
    if not patterns:
        return None
    parts = ("(?:" + ".*".join(re.escape(p) for p in pat.split("*")) + ")" for pat in patterns)
    return re.compile("|".join(parts))


@dataclass(frozen=True, slots=True)
class PolicyWarning:
    """A policy kept for less than a compliance minimum the configuration asked to check."""

    policy: str
    days: int
    minimum: ComplianceMinimum

    def __str__(self) -> str:
        return (
            f"retention class {self.policy!r} keeps events {self.days} days, less than the "
            f"{self.minimum.days} days of {self.minimum.text}"
        )


class RetentionPolicies:
    """The configured policies, in order, plus ``default_days`` for everything else."""

    __slots__ = ("_by_name", "_cache", "compliance", "default_days", "policies", "shipped")

    def __init__(
        self,
        policies: Sequence[Policy],
        *,
        default_days: int,
        compliance: Sequence[str] = DEFAULT_COMPLIANCE,
        shipped: bool = False,
    ) -> None:
        self.policies: tuple[Policy, ...] = tuple(policies)
        self.default_days = default_days
        self.compliance: tuple[str, ...] = tuple(compliance)
        self.shipped = shipped  # True when these are the defaults, not the user's file
        self._by_name = {p.name: p for p in self.policies}
        self._cache: dict[tuple[str, str, str | None, str | None], str] = {}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> RetentionPolicies:
        """Policies from a parsed configuration file (the whole file, or ``{}``).

        Without a ``[retention]`` table the shipped defaults apply (:func:`shipped_policies`).
        A ``[retention]`` table is the whole configuration: its policies replace the shipped
        ones, and a table without policies keeps everything for ``default_days``.
        """
        table = config.get("retention")
        if table is None:
            return shipped_policies()
        return parse_retention_table(table)

    def classify(self, event: Event) -> str:
        """The retention class of an event: the first policy matching it, else ``default``."""
        key = (event.category, event.action, event.collector_source, event.collector_parser)
        found = self._cache.get(key)
        if found is not None:
            return found
        name = DEFAULT_CLASS
        for policy in self.policies:
            if policy.matches(*key):
                name = policy.name
                break
        if len(self._cache) >= _CACHE_LIMIT:  # actions can come from applications: stay bounded
            self._cache.clear()
        self._cache[key] = name
        return name

    def days_for(self, retention_class: str) -> tuple[str, int]:
        """``(policy applied, days)`` for a partition's class, as the policies stand now.

        A class no longer configured (or ``default``) is kept ``default_days``.
        """
        policy = self._by_name.get(retention_class)
        if policy is None:
            return DEFAULT_CLASS, self.default_days
        return policy.name, policy.days

    def warnings(self) -> list[PolicyWarning]:
        """Every (class, minimum) pair where the class is kept less than the minimum."""
        out: list[PolicyWarning] = []
        classes = [(p.name, p.days) for p in self.policies] + [(DEFAULT_CLASS, self.default_days)]
        for key in self.compliance:
            minimum = COMPLIANCE_MINIMUMS[key]
            out.extend(PolicyWarning(n, d, minimum) for n, d in classes if d < minimum.days)
        return out


def make_policy(
    name: str,
    days: int,
    *,
    categories: Sequence[str] = (),
    actions: Sequence[str] = (),
    sources: Sequence[str] = (),
) -> Policy:
    """A policy with its action patterns compiled (the only way to build a usable one)."""
    return Policy(
        name=name,
        days=days,
        categories=frozenset(categories),
        actions=tuple(actions),
        sources=frozenset(sources),
        _action_re=_action_regex(actions),
    )


SHIPPED_DEFAULT_DAYS: Final = 400


def shipped_policies() -> RetentionPolicies:
    """What applies when the configuration has no ``[retention]`` table.

    Authentication and sessions 400 days (PCI DSS's 12 months with a margin), database
    statements 90 days (bulky, and often personal data), unparsed lines 30 days (kept long
    enough to write a parser for them); everything else ``default_days`` = 400.
    """
    return RetentionPolicies(
        [
            make_policy("authentication", 400, categories=["authentication", "session"]),
            make_policy("database", 90, categories=["database"]),
            make_policy("unparsed", 30, categories=["unparsed"]),
        ],
        default_days=SHIPPED_DEFAULT_DAYS,
        shipped=True,
    )


def load_policies(data_dir: Path, explicit: Path | None = None) -> RetentionPolicies:
    """The policies of a data directory's configuration file (or the shipped defaults)."""
    return RetentionPolicies.from_config(load_config_file(data_dir, explicit))


# --- validation -------------------------------------------------------------------------------


def parse_retention_table(table: object) -> RetentionPolicies:
    """Validate ``[retention]``; every mistake is a :class:`UserError` naming the key."""
    if not isinstance(table, Mapping):
        raise UserError("[retention] must be a table")
    _no_unknown_keys(table, _TOP_KEYS, "[retention]")
    default_days = _days(table.get("default_days", SHIPPED_DEFAULT_DAYS), "retention.default_days")
    compliance = _strings(table.get("compliance", list(DEFAULT_COMPLIANCE)), "retention.compliance")
    for key in compliance:
        if key not in COMPLIANCE_MINIMUMS:
            known = ", ".join(sorted(COMPLIANCE_MINIMUMS))
            raise UserError(f"retention.compliance: unknown rule {key!r} (known: {known})")
    raw_policies = table.get("policy", [])
    if not isinstance(raw_policies, list):
        raise UserError("retention.policy must be an array of tables ([[retention.policy]])")
    policies: list[Policy] = []
    seen: set[str] = set()
    for number, raw in enumerate(raw_policies, start=1):
        policy = _policy(raw, number)
        if policy.name in seen:
            raise UserError(f"retention policy {policy.name!r} is defined twice")
        seen.add(policy.name)
        policies.append(policy)
    return RetentionPolicies(policies, default_days=default_days, compliance=compliance)


def _policy(raw: object, number: int) -> Policy:
    where = f"retention.policy #{number}"
    if not isinstance(raw, Mapping):
        raise UserError(f"{where} must be a table")
    name = raw.get("name")
    if not isinstance(name, str) or not CLASS_NAME.fullmatch(name):
        raise UserError(
            f"{where}: name must be a lowercase word of 1-32 letters, digits or _ starting "
            f"with a letter (it names partitions), got {name!r}"
        )
    where = f"retention policy {name!r}"
    if name == DEFAULT_CLASS:
        raise UserError(f"{where}: 'default' is reserved; set retention.default_days instead")
    _no_unknown_keys(raw, _POLICY_KEYS, where)
    if "days" not in raw:
        raise UserError(f"{where}: days is required")
    days = _days(raw["days"], f"{where}: days")
    categories = _strings(raw.get("category", []), f"{where}: category")
    for category in categories:
        if category not in CATEGORIES:
            known = ", ".join(sorted(CATEGORIES))
            raise UserError(f"{where}: unknown category {category!r} (known: {known})")
    actions = _strings(raw.get("action", []), f"{where}: action")
    for action in actions:
        if not _ACTION_PATTERN.fullmatch(action):
            raise UserError(f"{where}: invalid action pattern {action!r} (e.g. 'db.*')")
    sources = _strings(raw.get("source", []), f"{where}: source")
    if not (categories or actions or sources):
        raise UserError(
            f"{where} matches every event: give category, action or source "
            "(or set retention.default_days)"
        )
    return make_policy(name, days, categories=categories, actions=actions, sources=sources)


def _no_unknown_keys(table: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise UserError(
            f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})"
        )


def _days(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError(f"{where} must be a whole number of days, got {value!r}")
    if not 0 < value <= MAX_DAYS:
        raise UserError(f"{where} must be between 1 and {MAX_DAYS}, got {value}")
    return value


def _strings(value: object, where: str) -> list[str]:
    """A string or a list of non-empty strings (TOML users write both)."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) and v for v in items):
        raise UserError(f"{where} must be a string or a list of strings, got {value!r}")
    return list(items)
