"""From parsed sudoers rules to entitlements: who may run what, as whom, without a password.

Pure: the parsed policy and the host's users and groups in, entitlements out. sudo's own
matching rules are followed where they decide who holds a right: within a list the *last*
matching item wins and ``!`` inverts it (so ``ADMINS = %wheel, !mallory`` excludes mallory
even though she is in wheel); an alias is matched as a whole and then negated if written
``!ALIAS``; ``Defaults:user !authenticate`` removes the password for that user unless a rule's
own ``PASSWD:`` tag puts it back. A negated command excludes what it names from the commands
*before* it in the same rule (recorded in ``except``): that is where sudo's last-match rule
makes it effective.

Each right is emitted for every account it resolves to (``granted_via`` names the rule's file,
line and the item that matched, e.g. ``/etc/sudoers:31 (%sudo)``) and once for each group
named in the rule, so a grant to an empty group is still visible.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from keeptrail.permissions.collectors.sudoers import CmndSpec, Defaults, Item, UserSpec
from keeptrail.permissions.model import AttributeValue, Entitlement

__all__ = ["Policy", "UnixUser", "sudo_entitlements"]

# Commands that give a root shell to whoever may run them as root (GTFOBins, abridged).
_SHELL_LIKE = frozenset(
    {
        *("sh", "bash", "dash", "zsh", "ksh", "csh", "tcsh", "fish", "su", "sudo", "sudoedit"),
        *("env", "vi", "vim", "nvim", "view", "nano", "ed", "emacs", "less", "more", "man"),
        *("python", "python3", "perl", "ruby", "lua", "php", "node", "awk", "gawk", "find"),
        *("tee", "cp", "mv", "dd", "chmod", "chown", "install", "tar", "zip", "rsync", "ssh"),
        *("git", "docker", "systemctl", "journalctl", "crontab", "visudo", "passwd"),
        *("useradd", "usermod"),
    }
)


_GROUP_KINDS = frozenset({"usergroup", "nonunixgroup", "usergid", "netgroup"})


@dataclass(slots=True, frozen=True)
class UnixUser:
    """What matching needs to know about an account."""

    name: str
    uid: int | None
    groups: frozenset[str]
    gids: frozenset[int]


@dataclass(slots=True)
class Policy:
    """Every file's rules, merged in the order sudo reads them."""

    aliases: dict[str, dict[str, tuple[Item, ...]]]
    specs: list[UserSpec]
    defaults: list[Defaults]


Verdict = tuple[bool, str] | None  # (matches, the item that decided) or None: no opinion


def sudo_entitlements(
    policy: Policy, users: Sequence[UnixUser], *, system: str, hostname: str
) -> list[Entitlement]:
    """Every sudo right in the policy, per account and per group named."""
    out: list[Entitlement] = []
    candidates = list(users)
    known = {u.name for u in users}
    for spec in policy.specs:
        for item in _flatten(spec.users, policy.aliases["user"], "useralias"):
            if item.kind == "username" and item.value not in known and item.value != "ALL":
                candidates.append(UnixUser(item.value, None, frozenset(), frozenset()))
                known.add(item.value)
    index = _UserIndex(candidates)
    auth: dict[str, bool] = {}
    for spec in policy.specs:
        applies = _host_matches(spec.hosts, policy.aliases["host"], hostname)
        hosts = _render(spec.hosts, policy.aliases["host"], "hostalias")
        rights = _rights(spec.commands, policy.aliases)
        for user in index.possible(_flatten(spec.users, policy.aliases["user"], "useralias")):
            verdict = _user_matches(spec.users, policy.aliases["user"], user)
            if verdict is None or not verdict[0]:
                continue
            if user.name not in auth:
                auth[user.name] = _default_authenticate(policy, user)
            default_auth = auth[user.name]
            for cmnd, command, excluded in rights:
                out.append(
                    _entitlement(
                        system,
                        user.name,
                        "user",
                        spec,
                        verdict[1],
                        cmnd,
                        command,
                        excluded,
                        policy,
                        hosts,
                        applies,
                        default_auth,
                    )
                )
        for item in _flatten(spec.users, policy.aliases["user"], "useralias"):
            if item.kind in _GROUP_KINDS and not item.negated:
                name = ("#" if item.kind == "usergid" else "") + item.value
                for cmnd, command, excluded in rights:
                    out.append(
                        _entitlement(
                            system,
                            name,
                            "group",
                            spec,
                            _item_text(item),
                            cmnd,
                            command,
                            excluded,
                            policy,
                            hosts,
                            applies,
                            _default_authenticate(policy, None),
                        )
                    )
    return out


class _UserIndex:
    """Which accounts an item can match at all: a rule is only evaluated for those.

    Without it every rule is matched against every account (rules × accounts); with it,
    against the accounts its items name, which keeps a 5,000-account host fast.
    """

    def __init__(self, users: Sequence[UnixUser]) -> None:
        self.users = list(users)
        self.by_name: dict[str, list[UnixUser]] = {}
        self.by_group: dict[str, list[UnixUser]] = {}
        self.by_uid: dict[str, list[UnixUser]] = {}
        self.by_gid: dict[str, list[UnixUser]] = {}
        for u in self.users:
            self.by_name.setdefault(u.name, []).append(u)
            if u.uid is not None:
                self.by_uid.setdefault(str(u.uid), []).append(u)
            for g in u.groups:
                self.by_group.setdefault(g, []).append(u)
            for gid in u.gids:
                self.by_gid.setdefault(str(gid), []).append(u)

    def possible(self, items: Iterable[Item]) -> list[UnixUser]:
        found: dict[str, UnixUser] = {}
        for item in items:
            if item.value == "ALL" and item.kind in ("username", "usergroup"):
                return self.users
            table = {
                "username": self.by_name,
                "usergroup": self.by_group,
                "userid": self.by_uid,
                "usergid": self.by_gid,
            }.get(item.kind, {})
            for u in table.get(item.value, ()):
                found.setdefault(u.name, u)
        return [u for u in self.users if u.name in found]


def _entitlement(
    system: str,
    principal: str,
    kind: str,
    spec: UserSpec,
    via: str,
    cmnd: CmndSpec,
    command: Item,
    excluded: list[str],
    policy: Policy,
    hosts: str,
    applies: bool | None,
    default_auth: bool,
) -> Entitlement:
    runas_users = _expand(cmnd.runasusers, policy.aliases["runas"], "runasalias")
    runas_groups = _expand(cmnd.runasgroups, policy.aliases["runas"], "runasalias")
    runas = _runas_text(runas_users, runas_groups, cmnd)
    as_root = cmnd.runasusers is None and cmnd.runasgroups is None
    as_root = as_root or any(
        not i.negated and i.value in ("root", "ALL", "0") for i in runas_users or ()
    )
    authenticate = bool(cmnd.options.get("authenticate", default_auth))
    attrs: dict[str, AttributeValue] = {
        "runas": runas,
        "nopasswd": not authenticate,
        "hosts": hosts,
        "root_equivalent": as_root and _shell_like(command.value),
    }
    if applies is not None:
        attrs["applies_here"] = applies
    if excluded:
        attrs["except"] = ", ".join(excluded)
    if cmnd.options.get("noexec"):
        attrs["noexec"] = True
    if command.digest:
        attrs["digest"] = command.digest
    return Entitlement(
        system=system,
        principal=principal,
        principal_kind=kind,
        privilege="sudo",
        scope=command.value,
        granted_via=f"{spec.origin} ({via})",
        privileged=True,
        attributes=attrs,
    )


def _rights(
    commands: Sequence[CmndSpec], aliases: Mapping[str, Mapping[str, tuple[Item, ...]]]
) -> list[tuple[CmndSpec, Item, list[str]]]:
    """Positive commands, each with the negated commands that follow it in the rule."""
    flat: list[tuple[CmndSpec, Item]] = []
    for cmnd in commands:
        for item in _flatten((cmnd.command,), aliases["cmnd"], "cmndalias"):
            flat.append((cmnd, item))
    out = []
    for i, (cmnd, item) in enumerate(flat):
        if item.negated:
            continue
        later = [c.value for _, c in flat[i + 1 :] if c.negated]
        out.append((cmnd, item, later))
    return out


def _flatten(
    items: Iterable[Item], aliases: Mapping[str, tuple[Item, ...]], alias_kind: str, depth: int = 0
) -> list[Item]:
    """Aliases replaced by their members; negation composes (``!A`` where A has ``!x``: x)."""
    out: list[Item] = []
    for item in items:
        if item.kind == alias_kind and item.value in aliases and depth < 64:
            for inner in _flatten(aliases[item.value], aliases, alias_kind, depth + 1):
                negated = inner.negated != item.negated
                out.append(Item(inner.kind, inner.value, negated, inner.digest))
        else:
            out.append(item)
    return out


def _expand(
    items: tuple[Item, ...] | None, aliases: Mapping[str, tuple[Item, ...]], kind: str
) -> tuple[Item, ...] | None:
    return None if items is None else tuple(_flatten(items, aliases, kind))


def _user_matches(
    items: Sequence[Item], aliases: Mapping[str, tuple[Item, ...]], user: UnixUser, depth: int = 0
) -> Verdict:
    """sudo's userlist_matches: the last item with an opinion decides, ``!`` inverts it."""
    result: Verdict = None
    for item in items:
        if item.kind == "useralias":
            inner = _user_matches(aliases.get(item.value, ()), aliases, user, depth + 1)
            if inner is None or depth > 64:
                continue
            matched = inner[0] != item.negated
            via = item.value if inner[1] == item.value else f"{item.value}: {inner[1]}"
            result = (matched, via)
        elif _item_matches_user(item, user):
            result = (not item.negated, _item_text(item))
    return result


def _item_matches_user(item: Item, user: UnixUser) -> bool:
    if item.kind == "username":
        return item.value in ("ALL", user.name)
    if item.kind == "usergroup":
        return item.value == "ALL" or item.value in user.groups
    if item.kind == "userid":
        return user.uid is not None and item.value == str(user.uid)
    if item.kind == "usergid":
        return item.value.isdigit() and int(item.value) in user.gids
    return False  # netgroups and non-Unix groups need a directory; emitted at group level


def _host_matches(
    items: Sequence[Item], aliases: Mapping[str, tuple[Item, ...]], hostname: str
) -> bool | None:
    """Does the rule apply on this host? None when it depends on an address or netgroup."""
    result: bool | None = False
    short = hostname.split(".", 1)[0]
    for item in _flatten(items, aliases, "hostalias"):
        if item.kind == "hostname" and _host_name_matches(item.value, hostname, short):
            result = not item.negated
        elif item.kind in ("networkaddr", "netgroup") and not item.negated and result is False:
            result = None
    return result


def _host_name_matches(pattern: str, hostname: str, short: str) -> bool:
    """``ALL``, the name, or a shell-style pattern (``web-*``, ``*.example.org``)."""
    if pattern in ("ALL", hostname, short):
        return True
    wild = any(c in pattern for c in "*?[")
    return wild and (fnmatchcase(hostname, pattern) or fnmatchcase(short, pattern))


def _default_authenticate(policy: Policy, user: UnixUser | None) -> bool:
    authenticate = True
    for d in policy.defaults:
        if d.binding == "":
            authenticate = d.authenticate
        elif d.binding == ":" and user is not None:
            verdict = _user_matches(d.targets, policy.aliases["user"], user)
            if verdict is not None and verdict[0]:
                authenticate = d.authenticate
    return authenticate


def _runas_text(
    users: tuple[Item, ...] | None, groups: tuple[Item, ...] | None, cmnd: CmndSpec
) -> str:
    if cmnd.runasusers is None and cmnd.runasgroups is None:
        return "root"
    text = ",".join(_item_text(i) for i in users or ())
    if groups:
        text += ":" + ",".join(("!" if i.negated else "") + i.value for i in groups)
    return text


def _render(items: Sequence[Item], aliases: Mapping[str, tuple[Item, ...]], kind: str) -> str:
    return ",".join(_item_text(i) for i in _flatten(items, aliases, kind))


def _item_text(item: Item) -> str:
    prefix = {"usergroup": "%", "usergid": "%#", "userid": "#", "nonunixgroup": "%:"}
    text = prefix.get(item.kind, "") + item.value
    if item.kind == "netgroup":
        text = "+" + item.value
    if item.kind == "usergroup" and item.value == "ALL":
        text = "ALL"
    return ("!" if item.negated else "") + text


def _shell_like(command: str) -> bool:
    if command == "ALL":
        return True
    program = command.split(" ", 1)[0]
    if program.endswith("/"):  # a whole directory of commands
        return True
    return posixpath.basename(program) in _SHELL_LIKE
