"""The shapes every finding rule shares: a finding, its evidence, and the rule's context.

Kept apart from :mod:`keeptrail.permissions.findings` (which runs the rules) so that each
rule module imports only these types and never the runner.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from keeptrail.permissions.findings_config import FindingsConfig
from keeptrail.permissions.model import Entitlement, RosterEntry, Snapshot
from keeptrail.permissions.usage import UsageReader

KINDS: Final = (
    "privileged_account",
    "dormant_privileged",
    "never_used",
    "unused_privilege",
    "shared_account",
    "orphaned_account",
    "stale_password",
    "stale_key",
    "drift",
    "no_audit_coverage",
)
SEVERITY_ORDER: Final = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}
_MEMBERSHIP_PREFIXES: Final = ("group:", "role:", "member:", "member_of:", "member of ")


@dataclass(frozen=True, slots=True)
class Evidence:
    """One thing that supports a finding: an event, a snapshot, a file line."""

    kind: str  # event | snapshot | file | roster
    ref: str
    note: str = ""

    def to_json(self) -> dict[str, str]:
        out = {"kind": self.kind, "ref": self.ref}
        if self.note:
            out["note"] = self.note
        return out


@dataclass(frozen=True, slots=True)
class Finding:
    """Something to look at, why, and what shows it."""

    kind: str
    severity: str
    system: str
    principal: str
    reason: str
    evidence: tuple[Evidence, ...] = ()
    recommendation: str | None = None
    entitlement: str | None = None  # entitlement_key of the right concerned, if one

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "severity": self.severity,
            "system": self.system,
            "principal": self.principal,
            "reason": self.reason,
            "recommendation": self.recommendation,
            "entitlement": self.entitlement,
            "evidence": [e.to_json() for e in self.evidence],
        }


@dataclass(slots=True)
class Context:
    """Everything a finding rule may read: the snapshot, usage, roster, thresholds, now."""

    snapshot: Snapshot
    usage: UsageReader
    config: FindingsConfig
    now: int
    roster: Sequence[RosterEntry] = ()
    covered: bool = True
    members: dict[str, set[str]] = field(default_factory=dict)
    can_log_in: frozenset[str] | None = None  # None: the collector does not say who can
    known_since: int | None = None  # taken_at of the system's first snapshot, if known

    def is_new(self, first_seen: int | None, instant: int) -> bool:
        """Whether a right first seen at ``first_seen`` appeared after ``instant``.

        A right already in the system's first snapshot has an unknown age (it was there
        before Keeptrail looked), so it is never "new".
        """
        if first_seen is None or first_seen <= instant:
            return False
        return self.known_since is None or first_seen > self.known_since

    @property
    def window_days(self) -> int:
        return max(1, self.config.window_us // 86_400_000_000)


def describe(e: Entitlement) -> str:
    """A right in a few words: ``sudo ALL``, ``group:docker``, ``SELECT public.orders``."""
    if not e.scope or e.scope == "*" or e.privilege.endswith(f":{e.scope}"):
        return e.privilege
    return f"{e.privilege} {e.scope}"


def snapshot_evidence(snapshot: Snapshot) -> Evidence:
    return Evidence("snapshot", snapshot.id, f"{snapshot.system} at taken_at={snapshot.taken_at}")


def grant_evidence(e: Entitlement) -> Evidence:
    """Where the grant comes from (a sudoers line, a group, a binding)."""
    kind = "file" if e.granted_via.startswith("/") else "grant"
    return Evidence(kind, e.granted_via)


def membership(snapshot: Snapshot) -> dict[str, set[str]]:
    """Group/role name → member principals, from membership entitlements of the snapshot."""
    out: dict[str, set[str]] = {}
    for e in snapshot.entitlements:
        if e.privilege == "member":  # PostgreSQL: role e.principal is a member of e.scope
            out.setdefault(e.scope, set()).add(e.principal)
            continue
        for prefix in _MEMBERSHIP_PREFIXES:
            if e.privilege.startswith(prefix):
                out.setdefault(e.privilege[len(prefix) :], set()).add(e.principal)
                break
    return out


def acting_principals(ctx: Context, e: Entitlement) -> list[str]:
    """Whose activity exercises an entitlement: the principal, or a group's members."""
    found: list[str] = []
    todo = [e.principal]
    while todo and len(found) < 500:  # nested groups/roles; bounded against cycles
        name = todo.pop()
        if name in found:
            continue
        found.append(name)
        todo.extend(sorted(ctx.members.get(name, ())))
    if e.principal_kind == "group" and len(found) > 1:
        found.remove(e.principal)
    return found
