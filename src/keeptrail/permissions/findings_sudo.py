"""sudo rules never used (or used for far less than they allow), judged rule by rule.

The Linux collector lists a sudo right once per account it reaches (and once for each group
the rule names), so one line ``%wheel ALL=(ALL) ALL`` is N entitlements with the same scope
and the same sudoers ``file:line``. Judging each copy alone would repeat one problem N times,
so the copies are grouped back into their rule (scope + ``file:line`` + exceptions) and:

- nobody used the rule in the window → one finding: remove the rule;
- the rule allows everything (``ALL``, a directory) and its holders ran only a few distinct
  commands → one finding: narrow it to exactly those commands;
- some holders used it and others never did → one finding per idle holder (who can log in):
  take them out of the rule.

Every command run through sudo (``sudo.command`` events) is matched against the rule with
sudo's own rules (:mod:`~keeptrail.permissions.sudo_match`), exceptions included.
"""

from __future__ import annotations

from collections.abc import Iterator

from keeptrail.permissions.findings_base import (
    Context,
    Evidence,
    Finding,
    acting_principals,
    grant_evidence,
)
from keeptrail.permissions.model import Entitlement, entitlement_key
from keeptrail.permissions.sudo_match import CommandSpec, list_matches, parse_command_list
from keeptrail.permissions.usage import Tallies, Tally

MAX_EVIDENCE = 10
RuleKey = tuple[str, str, str]


def sudo_items(e: Entitlement) -> tuple[CommandSpec, ...]:
    """A sudo entitlement's command list, with the commands its rule excepts (``except``)."""
    excepted = e.attributes.get("except")
    spec = e.scope
    if isinstance(excepted, str) and excepted:
        spec += "".join(f", !{x.strip()}" for x in excepted.split(","))
    return parse_command_list(spec)


def origin(e: Entitlement) -> tuple[str, str]:
    """Where a rule is and whom it names: ``("/etc/sudoers:33", "ADMINS")`` from
    ``"/etc/sudoers:33 (ADMINS: %wheel)"`` (the alias when there is one, else the item).
    """
    where, _, subject = e.granted_via.partition(" (")
    subject = subject.removesuffix(")")
    return where, subject.split(": ", 1)[0] if subject else ""


def rule_key(e: Entitlement) -> RuleKey:
    excepted = e.attributes.get("except")
    return e.scope, origin(e)[0], excepted if isinstance(excepted, str) else ""


def sudo_rule_findings(ctx: Context, rights: list[Entitlement]) -> Iterator[Finding]:
    """Findings for the sudo entitlements of a snapshot (already filtered: old enough, here)."""
    rules: dict[RuleKey, list[Entitlement]] = {}
    groups: dict[RuleKey, list[Entitlement]] = {}
    for e in rights:
        target = groups if e.principal_kind == "group" else rules
        target.setdefault(rule_key(e), []).append(e)
    for key, found in groups.items():
        if key not in rules:  # a group with no member account: judged through the group
            rules[key] = found[:1]
    for key in sorted(rules):
        yield from _rule(ctx, rules[key], groups.get(key, []))


def _tallies(ctx: Context, e: Entitlement) -> Tallies:
    merged = Tallies()
    for actor in acting_principals(ctx, e):
        part = ctx.usage.sudo_commands(ctx.snapshot.system, actor)
        merged.truncated |= part.truncated
        for cmd, tally in part.items.items():
            mine = merged.items.get(cmd)
            if mine is None:
                merged.items[cmd] = Tally(tally.count, tally.last)
            else:
                mine.count += tally.count
                if tally.last.time > mine.last.time:
                    mine.last = tally.last
    return merged


def _rule(ctx: Context, holders: list[Entitlement], groups: list[Entitlement]) -> Iterator[Finding]:
    first = holders[0]
    items = sudo_items(first)
    if not items:
        return
    used: dict[str, dict[str, Tally]] = {}
    truncated = False
    for h in holders:
        t = _tallies(ctx, h)
        truncated |= t.truncated
        used[h.principal] = {c: x for c, x in t.items.items() if list_matches(items, c)}
    union: dict[str, Tally] = {}
    for commands in used.values():
        for cmd, tally in commands.items():
            mine = union.get(cmd)
            union[cmd] = tally if mine is None else Tally(mine.count + tally.count, tally.last)
    if truncated:
        return
    days = ctx.window_days
    rule = f"the sudo rule `{first.scope}` ({first.granted_via})"
    subject = groups[0].principal if groups else (origin(first)[1] or first.principal)
    principal = first.principal if len(holders) == 1 else subject
    if len(holders) == 1 and first.principal_kind == "group":
        members = [a for a in acting_principals(ctx, first) if a != first.principal]
        who = f"group {first.principal} ({len(members)} member{'s' if len(members) != 1 else ''})"
    elif len(holders) == 1:
        who = first.principal
    else:
        names = ", ".join(sorted(h.principal for h in holders)[:5])
        who = f"none of its {len(holders)} holders ({names}{' ...' if len(holders) > 5 else ''})"
    evidence = [
        Evidence("event", t.last.event_id, f"sudo {c} ({t.count}x)")
        for c, t in sorted(union.items(), key=lambda kv: -kv[1].count)
    ][:MAX_EVIDENCE]
    key = entitlement_key(first) if len(holders) == 1 else None
    if not union:
        verb = "never used" if len(holders) == 1 else "used"
        yield _finding(first, principal, f"{who} {verb} {rule} in {days} days", "remove the rule",
                       [], key)  # fmt: skip
        return
    broad = any(not i.negated and (i.path == "ALL" or i.path.endswith("/")) for i in items)
    if broad and len(union) <= ctx.config.narrow_max_commands:
        run = sorted(union)
        n = len(run)
        plural = "s" if n != 1 else ""
        shown = ", ".join(f"`{c}`" for c in run)
        yield _finding(
            first,
            principal,
            f"{rule} was used for only {n} distinct command{plural} in {days} days",
            f"narrow `{first.scope}` to the {n} command{plural} used: {shown}",
            evidence,
            key,
        )
    if len(holders) > 1:
        for h in holders:
            if used[h.principal] or (
                ctx.can_log_in is not None and h.principal not in ctx.can_log_in
            ):
                continue
            yield _finding(
                h,
                h.principal,
                f"{h.principal} holds {rule} but never used it in {days} days, while "
                f"other holders did",
                f"remove {h.principal} from {origin(h)[1] or 'the rule'}",
                evidence,
                entitlement_key(h),
                severity="low",
            )


def _finding(
    e: Entitlement,
    principal: str,
    reason: str,
    recommendation: str,
    evidence: list[Evidence],
    key: str | None,
    severity: str = "medium",
) -> Finding:
    return Finding(
        "unused_privilege",
        severity,
        e.system,
        principal,
        reason,
        (grant_evidence(e), *evidence),
        recommendation=recommendation,
        entitlement=key,
    )
