"""Findings about accounts: who is privileged, dormant, never used, shared, orphaned, stale.

Each function takes the rule :class:`~keeptrail.permissions.findings_base.Context` of one
snapshot and yields findings; usage comes from the event store through the context's
:class:`~keeptrail.permissions.usage.UsageReader`, so every "last used" claim carries the id
of the event that shows it.

Accounts that cannot log in (locked, a ``nologin``/``false`` shell) and unprivileged system
accounts (daemons) are left out of the usage findings: they are *meant* never to log in.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Final

from keeptrail.event import format_time
from keeptrail.permissions.findings_base import (
    Context,
    Evidence,
    Finding,
    describe,
    grant_evidence,
    snapshot_evidence,
)
from keeptrail.permissions.findings_config import DAY_US
from keeptrail.permissions.model import Account, Entitlement, RosterEntry

_NO_LOGIN_SHELLS: Final = ("nologin", "false", "sync", "halt", "shutdown")
_KEY_PRIVILEGES: Final = ("ssh-key", "api-key", "access-key", "key")
_KEY_TIME_ATTRIBUTES: Final = ("created_at", "added_at", "created", "mtime")
MAX_EVIDENCE: Final = 10


def account_findings(ctx: Context) -> Iterator[Finding]:
    """Every account-level finding of one snapshot."""
    privileged = privileged_grants(ctx)
    accounts = principals(ctx)
    listed = {name for name, _ in accounts}
    for group in sorted(privileged.keys() - listed):  # a group with no known member (k8s)
        yield privileged_account(ctx, group, None, privileged[group])
    for name, account in accounts:
        grants = privileged.get(name, [])
        if grants:
            yield privileged_account(ctx, name, account, grants)
        if name == "PUBLIC":
            continue
        if ctx.covered and not _cannot_log_in(ctx, name, account, bool(grants)):
            yield from _usage(ctx, name, account, grants)
        if account is not None:
            yield from _password_age(ctx, account)
        if ctx.roster:
            yield from _orphan(ctx, name, account)
    yield from _key_age(ctx)
    if not ctx.covered:
        yield Finding(
            "no_audit_coverage",
            "medium",
            ctx.snapshot.system,
            "*",
            f"no event of {ctx.snapshot.system} is in the audit store for the last "
            f"{ctx.window_days} days, so dormant accounts and unused privileges cannot be "
            "judged; ship this system's logs to Keeptrail",
            (snapshot_evidence(ctx.snapshot),),
        )


def principals(ctx: Context) -> list[tuple[str, Account | None]]:
    """Accounts of the snapshot, plus principals that hold rights but have no account record."""
    accounts = {a.name: a for a in ctx.snapshot.accounts}
    out: list[tuple[str, Account | None]] = list(accounts.items())
    extra = sorted(
        {
            e.principal
            for e in ctx.snapshot.entitlements
            if e.principal_kind != "group" and e.principal not in accounts
        }
    )
    out.extend((name, None) for name in extra)
    return out


def privileged_grants(ctx: Context) -> dict[str, list[Entitlement]]:
    """Principal → its privileged entitlements, a group's rights counted for each member."""
    out: dict[str, list[Entitlement]] = {}
    for e in ctx.snapshot.entitlements:
        if not e.privileged:
            continue
        holders = sorted(ctx.members.get(e.principal, ())) if e.principal_kind == "group" else []
        for holder in holders or [e.principal]:
            out.setdefault(holder, []).append(e)
    return out


def privileged_account(
    ctx: Context, name: str, account: Account | None, grants: list[Entitlement]
) -> Finding:
    """A privileged account, listed with the grants that make it so (uid 0 besides root: high)."""
    rights = sorted({describe(g) for g in grants})
    shown = ", ".join(rights[:5]) + (f" and {len(rights) - 5} more" if len(rights) > 5 else "")
    severity = "info"
    reason = f"{name} holds privileged rights on {ctx.snapshot.system}: {shown}"
    if account is not None and account.uid == 0 and name != "root":
        severity = "high"
        reason = f"{name} has uid 0 (root-equivalent) on {ctx.snapshot.system}; also: {shown}"
    evidence = (
        snapshot_evidence(ctx.snapshot),
        *(grant_evidence(g) for g in grants[:MAX_EVIDENCE]),
    )
    return Finding("privileged_account", severity, ctx.snapshot.system, name, reason, evidence)


def _cannot_log_in(ctx: Context, name: str, account: Account | None, privileged: bool) -> bool:
    if ctx.can_log_in is not None and name not in ctx.can_log_in:
        return True  # e.g. a PostgreSQL role without LOGIN, a Linux account with no shell
    if account is None:
        return False
    if account.locked:
        return True
    if account.shell and account.shell.rsplit("/", 1)[-1] in _NO_LOGIN_SHELLS:
        return True
    return account.kind == "system" and not privileged


def _usage(
    ctx: Context, name: str, account: Account | None, grants: list[Entitlement]
) -> Iterator[Finding]:
    """Dormant privileged / never used / shared, from the audit history."""
    system = ctx.snapshot.system
    activity = ctx.usage.activity(system, name)
    last = activity.last_action
    evidence: list[Evidence] = [snapshot_evidence(ctx.snapshot)]
    last_time = last.time if last else None
    if last is not None:
        evidence.append(Evidence("event", last.event_id, f"last action {format_time(last.time)}"))
    if (
        account is not None
        and account.last_login
        and (last_time is None or account.last_login > last_time)
    ):
        last_time = account.last_login
        evidence.append(
            Evidence("snapshot", ctx.snapshot.id, f"last_login {format_time(account.last_login)}")
        )
    dormant_after = ctx.now - ctx.config.dormant_days * DAY_US
    if last_time is None:
        if _newer_than(ctx, name, dormant_after):
            return
        advice = (
            "lock direct logins to it (passwd -l, PermitRootLogin no) if nobody needs them"
            if account is not None and account.uid == 0
            else "if nobody needs it, disable it"
        )
        yield Finding(
            "never_used",
            "high" if grants else "low",
            system,
            name,
            f"{name} has no authentication or action in the audit store"
            + (" although it holds privileged rights" if grants else "")
            + f"; {advice}",
            tuple(evidence),
        )
        return
    if grants and last_time < dormant_after:
        yield Finding(
            "dormant_privileged",
            "high",
            system,
            name,
            f"privileged account {name} last authenticated or acted on "
            f"{format_time(last_time)[:10]}, more than {ctx.config.dormant_days} days ago",
            tuple(evidence),
            recommendation="disable the account or remove its privileges",
        )
    if activity.last_auth is not None:
        yield from _shared(ctx, name, grants)


def _newer_than(ctx: Context, name: str, instant: int) -> bool:
    """Whether every right of the principal appeared after ``instant`` (too new to judge)."""
    seen = [
        e.first_seen
        for e in ctx.snapshot.entitlements
        if e.principal == name and e.first_seen is not None
    ]
    return bool(seen) and ctx.is_new(min(seen), instant)


def _shared(ctx: Context, name: str, grants: list[Entitlement]) -> Iterator[Finding]:
    """An account that logs in from many sources is probably used by several people."""
    tallies = ctx.usage.login_sources(ctx.snapshot.system, name)
    generic = name.lower() in ctx.config.generic_names
    threshold = ctx.config.generic_min_sources if generic else ctx.config.shared_min_sources
    sources = sorted(tallies.items, key=lambda s: -tallies.items[s].count)
    if len(sources) < threshold:
        return
    listed = ", ".join(sources[:5]) + (" ..." if len(sources) > 5 else "")
    why = "a generic name and " if generic else ""
    yield Finding(
        "shared_account",
        "high" if grants else "medium",
        ctx.snapshot.system,
        name,
        f"{name} has {why}logged in from {len(sources)} different sources in "
        f"{ctx.window_days} days ({listed}): it looks shared between people",
        tuple(
            Evidence("event", tallies.items[s].last.event_id, f"login from {s}")
            for s in sources[:MAX_EVIDENCE]
        ),
        recommendation="give each person their own account and disable the shared one",
    )


def _password_age(ctx: Context, account: Account) -> Iterator[Finding]:
    changed = account.password_changed
    if changed is None or account.locked:
        return
    if account.attributes.get("password") in ("none", "locked", "empty"):
        return  # no password to rotate (an empty one is a different problem)
    age_days = (ctx.now - changed) // DAY_US
    if age_days > ctx.config.password_max_age_days:
        yield Finding(
            "stale_password",
            "medium",
            ctx.snapshot.system,
            account.name,
            f"{account.name}'s password was last changed {format_time(changed)[:10]}, "
            f"{age_days} days ago (maximum {ctx.config.password_max_age_days})",
            (snapshot_evidence(ctx.snapshot),),
            recommendation="rotate the password or lock it if the account uses keys only",
        )


def _key_age(ctx: Context) -> Iterator[Finding]:
    for e in ctx.snapshot.entitlements:
        if e.privilege not in _KEY_PRIVILEGES:
            continue
        created = next(
            (
                v
                for k in _KEY_TIME_ATTRIBUTES
                if isinstance(v := e.attributes.get(k), int) and not isinstance(v, bool)
            ),
            e.first_seen,
        )
        if created is None:
            continue
        age_days = (ctx.now - created) // DAY_US
        if age_days > ctx.config.key_max_age_days:
            label = e.attributes.get("fingerprint") or e.scope
            yield Finding(
                "stale_key",
                "medium",
                e.system,
                e.principal,
                f"{e.principal}'s {e.privilege} {label} dates from {format_time(created)[:10]}, "
                f"{age_days} days ago (maximum {ctx.config.key_max_age_days})",
                (snapshot_evidence(ctx.snapshot), grant_evidence(e)),
                recommendation="rotate the key",
            )


def _orphan(ctx: Context, name: str, account: Account | None) -> Iterator[Finding]:
    """A person's account whose owner left, or who is on no roster at all."""
    if account is not None and account.kind != "human":
        return
    if account is None and not _looks_personal(ctx, name):
        return
    entry = match_roster(ctx.roster, name, account)
    if entry is not None and entry.active:
        return
    if entry is None:
        yield Finding(
            "orphaned_account",
            "medium",
            ctx.snapshot.system,
            name,
            f"{name} matches nobody on the roster: find its owner or disable it",
            (snapshot_evidence(ctx.snapshot),),
        )
        return
    left = f" on {format_time(entry.left_at)[:10]}" if entry.left_at else ""
    yield Finding(
        "orphaned_account",
        "high",
        ctx.snapshot.system,
        name,
        f"{name} belongs to {entry.display_name or entry.person}, who left{left}, "
        "and the account still exists",
        (snapshot_evidence(ctx.snapshot), Evidence("roster", entry.person)),
        recommendation="disable the account and remove its rights",
    )


def _looks_personal(ctx: Context, name: str) -> bool:
    kinds = {e.principal_kind for e in ctx.snapshot.entitlements if e.principal == name}
    return kinds == {"user"}


def match_roster(
    roster: Sequence[RosterEntry], name: str, account: Account | None
) -> RosterEntry | None:
    """The roster entry an account belongs to: by username, person id, e-mail or its local part.

    An ``owner``/``email`` attribute on the account is tried too. Active entries win over
    former ones when a name appears twice (a rehired person, a reused login).
    """
    candidates = {name.lower()}
    if account is not None:
        for key in ("owner", "email", "mail"):
            value = account.attributes.get(key)
            if isinstance(value, str) and value:
                candidates.add(value.lower())
    found: RosterEntry | None = None
    for entry in roster:
        names = {entry.person.lower(), *(u.lower() for u in entry.usernames)}
        if entry.email:
            email = entry.email.lower()
            names.update({email, email.split("@", 1)[0]})
        if candidates & names:
            if entry.active:
                return entry
            found = found or entry
    return found
