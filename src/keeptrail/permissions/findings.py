"""Permission findings: what an auditor should look at, each with its reason and evidence.

A finding joins an entitlement snapshot (what a principal *may* do) with the audit history
(what it *did*, :mod:`keeptrail.permissions.usage`), a roster (who still works here) and an
earlier snapshot (what changed). Each one carries a plain-sentence ``reason`` and the
``evidence`` that supports it — event ids an auditor can open with ``keeptrail search
id:...`` or prove with ``keeptrail prove``, snapshot ids, and the file lines of the grant —
so no finding has to be taken on trust.

Kinds (``KINDS``) and the module that computes them:

- ``privileged_account``, ``dormant_privileged``, ``never_used``, ``shared_account``,
  ``orphaned_account``, ``stale_password``, ``stale_key``, ``no_audit_coverage`` —
  :mod:`~keeptrail.permissions.findings_accounts`;
- ``unused_privilege`` (sudo rules, database grants, Kubernetes verbs never exercised, or
  broad grants used for a few things, with a least-privilege recommendation) —
  :mod:`~keeptrail.permissions.findings_privileges`;
- ``drift`` (gained or lost between two snapshots, explained by an audited change or not) —
  :mod:`~keeptrail.permissions.findings_drift`.

A system without any event in the window gets one ``no_audit_coverage`` finding instead of
usage findings: with no logs, "never used" would be a guess, not a finding.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from fnmatch import fnmatchcase

from keeptrail.errors import UserError
from keeptrail.permissions import findings_accounts, findings_drift, findings_privileges
from keeptrail.permissions.findings_base import (
    KINDS,
    SEVERITY_ORDER,
    Context,
    Evidence,
    Finding,
    membership,
)
from keeptrail.permissions.findings_config import FindingsConfig
from keeptrail.permissions.model import RosterEntry, Snapshot
from keeptrail.permissions.snapshots import SnapshotStore
from keeptrail.permissions.usage import UsageReader
from keeptrail.store import Store

__all__ = [
    "KINDS",
    "Evidence",
    "Finding",
    "FindingsConfig",
    "compute_findings",
    "findings_for",
    "select",
]


def compute_findings(
    snapshots: Iterable[Snapshot],
    *,
    usage: UsageReader,
    config: FindingsConfig,
    now: int,
    roster: Sequence[RosterEntry] = (),
    previous: Mapping[str, Snapshot] | None = None,
    known_since: Mapping[str, int] | None = None,
) -> list[Finding]:
    """All findings for the latest snapshots (``previous``: system → older snapshot, for drift).

    ``known_since`` (system → time of its first snapshot) tells a right that appeared since
    Keeptrail started looking (too new to call unused) from one that was already there.

    Sorted by severity, then system, principal and kind, so the output is stable.
    """
    out: list[Finding] = []
    for snapshot in snapshots:
        usage.prefetch(snapshot.system)
        ctx = Context(snapshot, usage, config, now, roster, members=membership(snapshot))
        logins = frozenset(e.principal for e in snapshot.entitlements if e.privilege == "login")
        ctx.can_log_in = logins or None
        ctx.known_since = (known_since or {}).get(snapshot.system)
        ctx.covered = usage.coverage(snapshot.system) is not None
        out.extend(findings_accounts.account_findings(ctx))
        if ctx.covered:
            out.extend(findings_privileges.privilege_findings(ctx))
        old = (previous or {}).get(snapshot.system)
        if old is not None and old.id != snapshot.id:
            out.extend(findings_drift.drift_findings(old, snapshot, usage))
    return sort_findings(out)


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(
        findings,
        key=lambda f: (SEVERITY_ORDER.get(f.severity, 9), f.system, f.principal, f.kind, f.reason),
    )


def select(
    findings: Iterable[Finding], *, kinds: Sequence[str] = (), systems: Sequence[str] = ()
) -> list[Finding]:
    """Findings of the given kinds and systems (``*`` patterns allowed for systems)."""
    return [
        f
        for f in findings
        if (not kinds or f.kind in kinds)
        and (not systems or any(fnmatchcase(f.system, s) for s in systems))
    ]


def findings_for(
    snapshots: SnapshotStore,
    store: Store,
    *,
    config: FindingsConfig,
    now: int,
    systems: Sequence[str] = (),
    kinds: Sequence[str] = (),
) -> list[Finding]:
    """The findings for the latest snapshot of every system: what the CLI and the API show.

    Drift compares each latest snapshot with the one before it; the roster is the latest
    import (no roster, no orphan findings).
    """
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise UserError(f"unknown finding kind {unknown[0]!r}; kinds: {', '.join(KINDS)}")
    latest = [
        s
        for s in snapshots.latest_per_system()
        if not systems or any(fnmatchcase(s.system, p) for p in systems)
    ]
    previous: dict[str, Snapshot] = {}
    known_since: dict[str, int] = {}
    for snapshot in latest:
        before = snapshots.previous(snapshot)
        if before is not None:
            previous[snapshot.system] = before
        history = snapshots.list(system=snapshot.system, source=snapshot.source)
        known_since[snapshot.system] = min(i.taken_at for i in history)
    roster = snapshots.roster()
    usage = UsageReader(
        store,
        since=now - config.window_us,
        until=now,
        scan_limit=config.scan_limit,
        system_scan_limit=config.system_scan_limit,
        overrides=config.events,
    )
    found = compute_findings(
        latest,
        usage=usage,
        config=config,
        now=now,
        roster=roster.entries if roster else (),
        previous=previous,
        known_since=known_since,
    )
    return select(found, kinds=kinds)
