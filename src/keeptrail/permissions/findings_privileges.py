"""Privileges never exercised in the window, with a least-privilege recommendation.

Three kinds of grant can be checked against what the audit history shows:

- **sudo rules** (``privilege: sudo``, scope = the sudoers command list): every command the
  principal (or, for a ``%group`` rule, each member) ran through sudo is matched against the
  list with sudo's own rules (:mod:`~keeptrail.permissions.sudo_match`). A rule never used is
  a finding ("remove it"); ``ALL`` used for a few commands is one too ("narrow ``ALL`` to the
  2 commands used: ..."); so is an item of a list that nothing matched.
- **database grants** (``SELECT``/``INSERT``/``UPDATE``/``DELETE``/``TRUNCATE`` on a table):
  used when a logged statement of that verb names the table (pgaudit's object, or the table
  after FROM/INTO/UPDATE/JOIN in the statement text), by the role or a member of it.
- **Kubernetes rules** (privilege ``VERB RESOURCE``, scope ``namespace:NS`` or cluster-wide):
  used when an allowed request of that verb on that resource (and namespace) was logged for
  the subject. Group subjects are not judged: the audit log names users, and which users a
  group had at the time is not in the snapshot.

Only systems with audit coverage in the window reach this module (see findings.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from fnmatch import fnmatchcase
from typing import Final

from keeptrail.permissions.findings_base import (
    Context,
    Evidence,
    Finding,
    acting_principals,
    grant_evidence,
)
from keeptrail.permissions.findings_sudo import sudo_items, sudo_rule_findings
from keeptrail.permissions.model import Entitlement, entitlement_key
from keeptrail.permissions.sudo_match import list_matches
from keeptrail.permissions.usage import Tallies, Tally

SQL_PRIVILEGES: Final = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE"})
MAX_EVIDENCE: Final = 10
_SQL_FAMILIES: Final = frozenset({"postgres", "postgresql", "mysql"})


def privilege_findings(ctx: Context) -> Iterator[Finding]:
    """Every unused-privilege finding of one snapshot."""
    family = ctx.snapshot.system.partition(":")[0]
    sudo: list[Entitlement] = []
    for e in ctx.snapshot.entitlements:
        if _too_new(ctx, e) or e.attributes.get("applies_here") is False or e.principal == "PUBLIC":
            continue
        if e.privilege == "sudo":
            sudo.append(e)
        elif e.privilege.upper() in SQL_PRIVILEGES and family in _SQL_FAMILIES:
            yield from _sql(ctx, e)
        elif family in {"k8s", "kubernetes"} and len(e.privilege.split(" ")) == 2:
            yield from _k8s(ctx, e)
    yield from sudo_rule_findings(ctx, sudo)


def _too_new(ctx: Context, e: Entitlement) -> bool:
    """A grant younger than the window cannot be called unused in that window."""
    return ctx.is_new(e.first_seen, ctx.now - ctx.config.window_us)


def _merged(ctx: Context, e: Entitlement, kind: str) -> tuple[list[str], Tallies]:
    """The tallies of everyone acting with this grant, merged (counts add up)."""
    actors = acting_principals(ctx, e)
    merged = Tallies()
    for actor in actors:
        if kind == "sudo":
            part = ctx.usage.sudo_commands(ctx.snapshot.system, actor)
        elif kind == "sql":
            part = ctx.usage.sql_statements(ctx.snapshot.system, actor)
        else:
            part = ctx.usage.k8s_requests(ctx.snapshot.system, actor)
        merged.truncated |= part.truncated
        for key, tally in part.items.items():
            mine = merged.items.get(key)
            if mine is None:
                merged.items[key] = type(tally)(tally.count, tally.last)
            else:
                mine.count += tally.count
                if tally.last.time > mine.last.time:
                    mine.last = tally.last
    return actors, merged


def _finding(
    ctx: Context,
    e: Entitlement,
    reason: str,
    recommendation: str,
    used: dict[str, Evidence] | None = None,
    severity: str | None = None,
) -> Finding:
    evidence = [grant_evidence(e), *list((used or {}).values())[:MAX_EVIDENCE]]
    return Finding(
        "unused_privilege",
        severity or ("medium" if e.privileged else "low"),
        e.system,
        e.principal,
        reason,
        tuple(evidence),
        recommendation=recommendation,
        entitlement=entitlement_key(e),
    )


def _who(e: Entitlement, actors: list[str]) -> str:
    if e.principal_kind == "group":
        n = len([a for a in actors if a != e.principal])
        return f"group {e.principal} ({n} member{'s' if n != 1 else ''})"
    return e.principal


def k8s_matches(e: Entitlement, key: str) -> bool:
    """Whether a k8s usage key (``verb resource namespace``) is under a ``VERB RESOURCE`` right."""
    verb, _, resource = e.privilege.partition(" ")
    if resource != "*":  # "deployments.apps": the audit log names the API group apart
        base, slash, sub = resource.partition("/")
        resource = base.split(".", 1)[0] + slash + sub
    namespace = e.scope.removeprefix("namespace:") if e.scope.startswith("namespace:") else "*"
    v, r, ns = [*key.split(" "), "", "", ""][:3]
    return (
        fnmatchcase(v, verb)
        and fnmatchcase(r, resource)
        and (namespace == "*" or fnmatchcase(ns, namespace))
    )


def sql_matches(e: Entitlement, key: str) -> bool:
    """Whether a SQL usage key (``VERB table``) exercises a table grant."""
    verb, _, table = key.partition(" ")
    return verb == e.privilege.upper() and bool(table) and table_matches(e.scope, table)


def uses(e: Entitlement, tallies: Tallies) -> dict[str, Tally]:
    """The usage keys of ``tallies`` that exercise entitlement ``e`` (sudo, SQL or k8s)."""
    if e.privilege == "sudo":
        items = sudo_items(e)
        return {k: t for k, t in tallies.items.items() if list_matches(items, k)}
    if e.privilege.upper() in SQL_PRIVILEGES:
        return {k: t for k, t in tallies.items.items() if sql_matches(e, k)}
    if len(e.privilege.split(" ")) == 2:
        return {k: t for k, t in tallies.items.items() if k8s_matches(e, k)}
    return {}


def table_matches(scope: str, table: str) -> bool:
    """Whether a grant's scope (``public.orders``, ``public.*``) covers a table seen in a log.

    A table logged without a schema is taken to be in ``public`` (the default search_path).
    """
    scope = scope.strip().lower().replace('"', "")
    table = table.lower()
    if "." not in table:
        table = f"public.{table}"
    if "." not in scope:
        scope = f"public.{scope}"
    return fnmatchcase(table, scope)


def _sql(ctx: Context, e: Entitlement) -> Iterator[Finding]:
    verb = e.privilege.upper()
    actors, tallies = _merged(ctx, e, "sql")
    used = uses(e, tallies)
    if used or tallies.truncated:
        return
    other = sorted(
        {k for k in tallies.items if " " in k and table_matches(e.scope, k.split(" ")[1])}
    )
    hint = f" (statements seen on it: {', '.join(other[:5])})" if other else ""
    yield _finding(
        ctx,
        e,
        f"{_who(e, actors)} never ran {verb} on {e.scope} in {ctx.window_days} days{hint}",
        f"REVOKE {verb} ON {e.scope} FROM {e.principal}",
        {k: Evidence("event", tallies.items[k].last.event_id, k) for k in other},
    )


def _k8s(ctx: Context, e: Entitlement) -> Iterator[Finding]:
    if e.principal_kind == "group":
        return
    verb, resource = e.privilege.split(" ")
    namespace = e.scope.removeprefix("namespace:") if e.scope.startswith("namespace:") else "*"
    _actors, tallies = _merged(ctx, e, "k8s")
    used: dict[str, Evidence] = {}
    for key, t in uses(e, tallies).items():
        v, r = key.split(" ")[:2]
        used[f"{v} {r}"] = Evidence("event", t.last.event_id, f"{key} ({t.count}x)")
    where = f"in namespace {namespace}" if namespace != "*" else "cluster-wide"
    if not used:
        if tallies.truncated:
            return
        yield _finding(
            ctx,
            e,
            f"{e.principal} never used `{e.privilege}` {where} in {ctx.window_days} days "
            f"({e.granted_via})",
            f"remove `{e.privilege}` from the role bound by {e.granted_via}",
        )
        return
    if ("*" in verb or "*" in resource) and len(used) <= ctx.config.narrow_max_commands:
        shown = ", ".join(f"`{u}`" for u in sorted(used))
        yield _finding(
            ctx,
            e,
            f"{e.principal} used the wildcard rule `{e.privilege}` {where} for only "
            f"{len(used)} verb/resource pair{'s' if len(used) != 1 else ''} in "
            f"{ctx.window_days} days",
            f"narrow `{e.privilege}` to: {shown}",
            used,
        )
