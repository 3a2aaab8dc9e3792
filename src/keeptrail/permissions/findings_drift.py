"""Drift: who gained or lost what between two snapshots, and whether an audited change explains it.

A right that appears between two collections should have left a trace in the audit trail: a
``group.member_add`` for a new group membership, a ``user.create`` for a new account, a
``GRANT`` statement for a database privilege, a write to a RoleBinding for Kubernetes, an edit
of a sudoers file (auditd watch or ``visudo`` run through sudo). For each change this module
looks for such an event of the same system in ``(old.taken_at, new.taken_at]``, and says
which one explains it — or that none does, which is what an auditor needs to chase (a change
made outside the change process, or by someone editing files by hand).

Severity: a privileged right gained without explanation is ``high``; any other unexplained
gain ``medium``; an explained gain ``low``; a loss ``low`` (unexplained) or ``info``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Final

from keeptrail.event import Event, format_time
from keeptrail.permissions.findings_base import Evidence, Finding, describe, grant_evidence
from keeptrail.permissions.model import Entitlement, Snapshot, entitlement_key
from keeptrail.permissions.usage import UsageReader, all_of, equals
from keeptrail.query import parse
from keeptrail.query.tree import Node

_PER_QUERY: Final = 500
_RBAC: Final = ("rolebindings", "clusterrolebindings", "roles", "clusterroles")
_WRITE_VERBS: Final = ("create", "update", "patch", "delete")

Probe = tuple[Node | str, Callable[[Event], bool]]


def drift_findings(old: Snapshot, new: Snapshot, usage: UsageReader) -> Iterator[Finding]:
    """Findings for every entitlement gained or lost from ``old`` to ``new``."""
    before = {entitlement_key(e): e for e in old.entitlements}
    after = {entitlement_key(e): e for e in new.entitlements}
    cache: dict[Node, list[Event]] = {}
    for key in sorted(after.keys() - before.keys()):
        yield _finding(after[key], True, old, new, usage, cache)
    for key in sorted(before.keys() - after.keys()):
        yield _finding(before[key], False, old, new, usage, cache)


def _finding(
    e: Entitlement,
    gained: bool,
    old: Snapshot,
    new: Snapshot,
    usage: UsageReader,
    cache: dict[Node, list[Event]],
) -> Finding:
    explained = _explain(e, gained, old, new, usage, cache)
    verb = "gained" if gained else "lost"
    right = f"`{describe(e)}`"
    interval = (
        f"between snapshot {old.id[:13]} ({format_time(old.taken_at)[:16]}) and "
        f"{new.id[:13]} ({format_time(new.taken_at)[:16]})"
    )
    evidence = [
        Evidence("snapshot", old.id, "before"),
        Evidence("snapshot", new.id, "after"),
        grant_evidence(e),
    ]
    if explained is not None:
        evidence.append(
            Evidence("event", explained.id, f"{explained.action} at {format_time(explained.time)}")
        )
        reason = (
            f"{e.principal} {verb} {right} on {e.system} {interval}; explained by the audited "
            f"{explained.action} event {explained.id}"
            + (f" by {explained.actor_name}" if explained.actor_name else "")
        )
        severity = "low" if gained else "info"
    else:
        reason = (
            f"{e.principal} {verb} {right} on {e.system} {interval}; no audited change in the "
            "store explains it"
        )
        severity = ("high" if e.privileged else "medium") if gained else "low"
    return Finding(
        "drift",
        severity,
        e.system,
        e.principal,
        reason,
        tuple(evidence),
        recommendation=None if explained else "find the change ticket, or revert the change",
        entitlement=entitlement_key(e),
    )


def _explain(
    e: Entitlement,
    gained: bool,
    old: Snapshot,
    new: Snapshot,
    usage: UsageReader,
    cache: dict[Node, list[Event]],
) -> Event | None:
    scope = usage.scoped(new.system)
    for query, accepts in probes(e, gained):
        full = all_of(scope, parse(query) if isinstance(query, str) else query)
        if full not in cache:
            cache[full] = list(
                usage.events(full, since=old.taken_at + 1, until=new.taken_at + 1, limit=_PER_QUERY)
            )
        for event in cache[full]:
            if accepts(event):
                return event
    return None


def _mentions(name: str) -> Callable[[Event], bool]:
    lowered = name.lower()

    def accepts(event: Event) -> bool:
        for value in (
            event.details.get("member"),
            event.details.get("statement"),
            event.details.get("command"),
            event.target_resource,
        ):
            if isinstance(value, str) and lowered in value.lower():
                return True
        return lowered in event.raw.lower()

    return accepts


def _always(_event: Event) -> bool:
    return True


def probes(e: Entitlement, gained: bool) -> list[Probe]:
    """The searches (and an event check) that would find the change behind a drift."""
    family = e.system.partition(":")[0]
    who = _mentions(e.principal)
    out: list[Probe] = []
    if e.privilege.startswith("group:"):
        action = "group.member_add" if gained else "group.member_remove"
        group = e.privilege.removeprefix("group:")
        out.append((all_of(parse(f"action:{action}"), equals("target.resource", group)), who))
    if family == "linux" and e.privilege == "sudo":
        out.append(("target.resource:*sudoers*", _always))
        out.append(("action:sudo.command AND details.command:*sudoers*", _always))
        out.append(("action:sudo.command AND details.command:*visudo*", _always))
    if family in {"postgres", "postgresql", "mysql"}:
        out.append(("action:db.ddl", who))
    if family in {"k8s", "kubernetes"}:
        types = " OR ".join(f"target.resource_type:{t}" for t in _RBAC)
        verbs = " OR ".join(f"action:k8s.{v}" for v in _WRITE_VERBS)
        via = e.granted_via.rsplit(":", 1)[-1].rsplit("/", 1)[-1]
        out.append((f"({types}) AND ({verbs})", _mentions(via) if via else _always))
    account_action = "user.create" if gained else "user.delete"
    out.append(
        (all_of(parse(f"action:{account_action}"), equals("target.resource", e.principal)), _always)
    )
    return out
