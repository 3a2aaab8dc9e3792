"""The Linux host collector: accounts, groups, sudo rights and SSH keys under a root directory.

``root`` is ``/`` on a live host; tests (and audits of a mounted image or a backup) point it
at a directory holding real-format files. Everything is read relative to it, including the
homes named in ``/etc/passwd`` and the targets of ``@includedir``.

``/etc/shadow`` holds password hashes. Only what an audit needs is taken from it — is the
account locked, is there a password at all, when was it last changed, when does it expire —
and each line is reduced to those facts as soon as it is split: the hash is never stored,
logged or quoted in an error (a malformed line is reported by its number only).

Privileged means root-equivalent on the host: uid 0, any sudo right, or membership in a group
that is root in all but name (sudo, wheel, adm, docker, lxd, disk, root).
"""

from __future__ import annotations

import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Final

from keeptrail.event import uuid7
from keeptrail.permissions.collectors.authorized_keys import parse_authorized_keys
from keeptrail.permissions.collectors.sudo_rights import Policy, UnixUser, sudo_entitlements
from keeptrail.permissions.collectors.sudoers import SudoersFile, SudoersSyntaxError, parse_sudoers
from keeptrail.permissions.collectors.sudoers_cvt import (
    CvtsudoersFailed,
    cvtsudoers_path,
    parse_with_cvtsudoers,
)
from keeptrail.permissions.model import (
    Account,
    AttributeValue,
    Collected,
    Entitlement,
    Snapshot,
)

__all__ = ["ROOT_GROUPS", "SUDOERS_BACKENDS", "collect_linux"]

ROOT_GROUPS: Final = frozenset({"sudo", "wheel", "adm", "docker", "lxd", "disk", "root"})
SUDOERS_BACKENDS: Final = ("auto", "parser", "cvtsudoers")
NO_LOGIN_SHELLS: Final = frozenset(
    {"/usr/sbin/nologin", "/sbin/nologin", "/bin/false", "/usr/bin/false", "/bin/sync", ""}
)
_DAY_US: Final = 86_400 * 1_000_000
_MAX_INCLUDE_DEPTH: Final = 128


@dataclass(slots=True)
class _PasswdEntry:
    line: int
    name: str
    uid: int
    gid: int
    gecos: str
    home: str
    shell: str


@dataclass(slots=True, frozen=True)
class _ShadowFacts:
    """What an audit may know from a shadow line — no hash."""

    password: str  # set | empty | none | locked
    locked: bool
    last_change: int | None  # µs; None when never or "must change"
    must_change: bool
    max_days: int | None
    inactive_days: int | None
    expires: int | None  # µs


def collect_linux(
    root: Path = Path("/"),
    *,
    hostname: str | None = None,
    sudoers: str = "auto",
    now: int | None = None,
) -> Collected:
    """One snapshot of a host (or of a directory laid out like one)."""
    if sudoers not in SUDOERS_BACKENDS:
        raise ValueError(f"sudoers backend must be one of {', '.join(SUDOERS_BACKENDS)}")
    warnings: list[str] = []
    host = hostname or _hostname(root)
    system = f"linux:{host}"
    taken_at = now if now is not None else time.time_ns() // 1000
    passwd = _read_passwd(root, warnings)
    shadow = _read_shadow(root, warnings)
    groups, group_lines = _read_group(root, warnings)
    uid_min = _uid_min(root)
    gid_names = {gid: name for name, (gid, _) in groups.items()}

    member_of: dict[str, set[str]] = {p.name: set() for p in passwd}
    for name, (_, members) in groups.items():
        for m in members:
            member_of.setdefault(m, set()).add(name)
    unix_users = [
        UnixUser(
            p.name,
            p.uid,
            frozenset(member_of.get(p.name, set()) | {gid_names.get(p.gid, str(p.gid))}),
            frozenset({p.gid} | {groups[g][0] for g in member_of.get(p.name, ()) if g in groups}),
        )
        for p in passwd
    ]

    primary_users: dict[int, int] = {}
    for p in passwd:
        primary_users[p.gid] = primary_users.get(p.gid, 0) + 1
    entitlements: list[Entitlement] = []
    for p in passwd:
        if p.uid == 0:
            entitlements.append(
                Entitlement(
                    system, p.name, "user", "uid0", "ALL", f"/etc/passwd:{p.line} (uid 0)", True
                )
            )
        if p.shell not in NO_LOGIN_SHELLS and not p.shell.endswith("/nologin"):
            entitlements.append(
                Entitlement(
                    system,
                    p.name,
                    "user",
                    "login",
                    "shell",
                    f"/etc/passwd:{p.line} (shell {p.shell})",
                    p.uid == 0,
                    {"shell": p.shell},
                )
            )
        primary = gid_names.get(p.gid)
        shared = primary is not None and (
            primary_users[p.gid] > 1 or bool(groups[primary][1]) or primary in ROOT_GROUPS
        )
        if primary is not None and primary != p.name and shared:
            entitlements.append(
                Entitlement(
                    system,
                    p.name,
                    "user",
                    f"group:{primary}",
                    "*",
                    f"/etc/passwd:{p.line} (primary group)",
                    primary in ROOT_GROUPS,
                )
            )
        for g in sorted(member_of.get(p.name, ())):
            if g == primary:
                continue
            entitlements.append(
                Entitlement(
                    system,
                    p.name,
                    "user",
                    f"group:{g}",
                    "*",
                    f"/etc/group:{group_lines[g]}",
                    g in ROOT_GROUPS,
                )
            )
    policy = _read_sudoers(root, sudoers, host, warnings)
    entitlements.extend(sudo_entitlements(policy, unix_users, system=system, hostname=host))
    privileged_users = {
        e.principal for e in entitlements if e.principal_kind == "user" and e.privileged
    }
    accounts: list[Account] = []
    for p in passwd:
        keys = _read_keys(root, p, system, p.name in privileged_users, warnings)
        entitlements.extend(keys)
        facts = shadow.get(p.name)
        accounts.append(_account(system, p, facts, uid_min, member_of, gid_names, len(keys)))
    snapshot = Snapshot(
        id=uuid7(),
        system=system,
        source="linux",
        taken_at=taken_at,
        accounts=tuple(accounts),
        entitlements=tuple(entitlements),
    )
    return Collected(snapshot, tuple(warnings))


def _account(
    system: str,
    p: _PasswdEntry,
    facts: _ShadowFacts | None,
    uid_min: int,
    member_of: dict[str, set[str]],
    gid_names: dict[int, str],
    keys: int,
) -> Account:
    interactive = p.shell not in NO_LOGIN_SHELLS and not p.shell.endswith("/nologin")
    if p.uid >= uid_min and p.uid != 65534:
        kind = "human" if interactive else "service"
    else:
        kind = "system"
    attrs: dict[str, AttributeValue] = {
        "gecos": p.gecos,
        "home": p.home,
        "gid": p.gid,
        "primary_group": gid_names.get(p.gid),
        "groups": ",".join(sorted(member_of.get(p.name, ()))),
        "ssh_keys": keys,
    }
    if facts is not None:
        attrs["password"] = facts.password
        attrs["must_change_password"] = facts.must_change
        attrs["password_max_days"] = facts.max_days
        attrs["inactive_days"] = facts.inactive_days
    return Account(
        system=system,
        name=p.name,
        kind=kind,
        uid=p.uid,
        locked=facts.locked if facts else None,
        expires=facts.expires if facts else None,
        password_changed=facts.last_change if facts else None,
        shell=p.shell,
        attributes=attrs,
    )


def _under(root: Path, path: str | PurePosixPath) -> Path:
    """A path of the audited system, inside ``root``."""
    return root / str(path).lstrip("/")


def _read(root: Path, path: str, warnings: list[str], *, required: bool = False) -> str | None:
    try:
        return _under(root, path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        if required:
            warnings.append(f"{path} does not exist under {root}")
        return None
    except OSError as exc:
        warnings.append(f"cannot read {path}: {exc.strerror}")
        return None


def _hostname(root: Path) -> str:
    try:
        name = _under(root, "/etc/hostname").read_text().strip()
    except OSError:
        name = ""
    return name or socket.gethostname()


def _uid_min(root: Path) -> int:
    try:
        text = _under(root, "/etc/login.defs").read_text()
    except OSError:
        return 1000
    m = re.search(r"^\s*UID_MIN\s+([0-9]+)", text, re.MULTILINE)
    return int(m.group(1)) if m else 1000


def _read_passwd(root: Path, warnings: list[str]) -> list[_PasswdEntry]:
    text = _read(root, "/etc/passwd", warnings, required=True) or ""
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith(("#", "+", "-")):  # NIS markers are not accounts
            continue
        f = line.split(":")
        if len(f) != 7 or not _is_number(f[2]) or not _is_number(f[3]):
            warnings.append(f"/etc/passwd:{number}: not a passwd entry, skipped")
            continue
        out.append(_PasswdEntry(number, f[0], int(f[2]), int(f[3]), f[4], f[5], f[6]))
    return out


def _read_shadow(root: Path, warnings: list[str]) -> dict[str, _ShadowFacts]:
    text = _read(root, "/etc/shadow", warnings)
    out: dict[str, _ShadowFacts] = {}
    for number, line in enumerate((text or "").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        name, facts = _shadow_line(line)
        if facts is None:  # by number only: the line holds a password hash
            warnings.append(f"/etc/shadow:{number}: not a shadow entry, skipped")
            continue
        out[name] = facts
    return out


def _shadow_line(line: str) -> tuple[str, _ShadowFacts | None]:
    """A shadow line reduced to facts; the hash field is looked at, never kept."""
    f = line.split(":")
    if len(f) != 9:
        return "", None
    secret = f[1]
    if secret.startswith("!"):
        state, locked = "locked", True
    elif secret == "":
        state, locked = "empty", False
    elif secret.startswith("*") or (not secret.startswith("$") and len(secret) < 13):
        state, locked = "none", False
    else:
        state, locked = "set", False
    del secret
    numbers = [_days(v) for v in f[2:8]]
    if any(n is False for n in numbers):
        return "", None
    lastchg, _min, maxd, _warn, inactive, expire = (n if n is not False else None for n in numbers)
    return f[0], _ShadowFacts(
        password=state,
        locked=locked,
        last_change=lastchg * _DAY_US if lastchg else None,
        must_change=lastchg == 0,
        max_days=maxd if maxd is not None and maxd < 99999 else None,
        inactive_days=inactive,
        expires=expire * _DAY_US if expire is not None else None,
    )


def _days(value: str) -> int | bool | None:
    """A day count, None when empty, False when not a number (never raises with the text)."""
    if value == "":
        return None
    return int(value) if _is_number(value) else False


def _is_number(value: str) -> bool:
    """ASCII digits only: ``"²".isdigit()`` is true, and ``int("²")`` raises."""
    return value.isascii() and value.isdigit()


def _read_group(
    root: Path, warnings: list[str]
) -> tuple[dict[str, tuple[int, list[str]]], dict[str, int]]:
    text = _read(root, "/etc/group", warnings, required=True) or ""
    groups: dict[str, tuple[int, list[str]]] = {}
    lines: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith(("#", "+", "-")):
            continue
        f = line.split(":")
        if len(f) != 4 or not _is_number(f[2]):
            warnings.append(f"/etc/group:{number}: not a group entry, skipped")
            continue
        groups[f[0]] = (int(f[2]), [m.strip() for m in f[3].split(",") if m.strip()])
        lines[f[0]] = number
    return groups, lines


def _read_sudoers(root: Path, backend: str, host: str, warnings: list[str]) -> Policy:
    """Every sudoers file in the order sudo reads them, through the chosen parser."""
    policy = Policy({"user": {}, "runas": {}, "host": {}, "cmnd": {}}, [], [])
    binary = cvtsudoers_path() if backend != "parser" else None
    if backend == "cvtsudoers" and binary is None:
        warnings.append("cvtsudoers is not installed: sudoers read with the built-in parser")
    seen: set[Path] = set()

    def read(path: str, depth: int) -> None:
        real = _under(root, path)
        if depth > _MAX_INCLUDE_DEPTH or real in seen:
            warnings.append(f"{path}: include loop or too deep, skipped")
            return
        seen.add(real)
        text = _read(root, path, warnings, required=depth == 0)
        if text is None:
            return
        try:
            parsed = parse_sudoers(text, path)
        except SudoersSyntaxError as exc:
            warnings.append(f"sudoers: {exc}; file skipped")
            return
        used = parsed
        if binary is not None:
            used = _through_cvtsudoers(text, path, parsed, binary, warnings)
        for kind, table in used.aliases.items():
            policy.aliases[kind].update(table)
        policy.specs.extend(used.specs)
        policy.defaults.extend(parsed.defaults)
        for inc in parsed.includes:
            target = _include_path(inc.path, path, host)
            if inc.directory:
                for name in _includedir(root, target, warnings):
                    read(str(PurePosixPath(target) / name), depth + 1)
            else:
                read(target, depth + 1)

    read("/etc/sudoers", 0)
    return policy


def _through_cvtsudoers(
    text: str, path: str, parsed: SudoersFile, binary: str, warnings: list[str]
) -> SudoersFile:
    try:
        return parse_with_cvtsudoers(text, path, [s.origin for s in parsed.specs], binary=binary)
    except CvtsudoersFailed as exc:
        warnings.append(f"{exc}; read with the built-in parser instead")
        return parsed


def _include_path(written: str, including: str, host: str) -> str:
    """``%h`` is the short host name, ``%%`` a percent; relative to the including file."""
    expanded = re.sub(r"%(.)", lambda m: _percent(m, host), written)
    if not expanded.startswith("/"):
        expanded = str(PurePosixPath(including).parent / expanded)
    return expanded


def _percent(m: re.Match[str], host: str) -> str:
    return {"h": host.split(".", 1)[0], "%": "%"}.get(m.group(1), m.group())


def _includedir(root: Path, directory: str, warnings: list[str]) -> list[str]:
    """Files sudo reads from an includedir: sorted, no ``~`` suffix, no ``.`` in the name."""
    try:
        entries = sorted(p for p in _under(root, directory).iterdir() if p.is_file())
    except FileNotFoundError:
        return []
    except OSError as exc:
        warnings.append(f"cannot list {directory}: {exc.strerror}")
        return []
    return [p.name for p in entries if not p.name.endswith("~") and "." not in p.name]


def _read_keys(
    root: Path, p: _PasswdEntry, system: str, privileged: bool, warnings: list[str]
) -> list[Entitlement]:
    out: list[Entitlement] = []
    if p.home in ("", "/", "/nonexistent"):
        return out
    for file in ("authorized_keys", "authorized_keys2"):
        path = str(PurePosixPath(p.home) / ".ssh" / file)
        text = _read(root, path, warnings)
        if text is None:
            continue
        keys, bad = parse_authorized_keys(text)
        for number in bad:
            warnings.append(f"{path}:{number}: not a public key line, skipped")
        for k in keys:
            attrs: dict[str, AttributeValue] = {
                "key_type": k.key_type,
                "bits": k.bits,
                "comment": k.comment,
                "options": ",".join(k.options) or None,
            }
            for name in ("from", "command", "expiry-time", "principals", "permitopen"):
                value = k.options.get(name)
                if isinstance(value, str):
                    attrs[name] = value
            attrs["restrict"] = k.options.get("restrict") is True
            out.append(
                Entitlement(
                    system,
                    p.name,
                    "user",
                    "ssh-key",
                    k.fingerprint,
                    f"{path}:{k.line}",
                    privileged or p.uid == 0,
                    attrs,
                )
            )
    return out
