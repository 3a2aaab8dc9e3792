"""The entitlement model every permission collector produces.

A collector reads one system (a Linux host, a PostgreSQL cluster, a Kubernetes cluster, an
imported application export) and returns one :class:`Snapshot`: the accounts it knows and the
entitlements (who may do what, where, and through which grant). Findings and review campaigns
only ever see these types, so a new system is a new collector, never a new finding.

All times are integer microseconds since the Unix epoch (UTC), like the rest of Keeptrail.
The model never holds secrets: no password hashes, no private keys, no tokens.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = [
    "ACCOUNT_KINDS",
    "PRINCIPAL_KINDS",
    "SOURCES",
    "Account",
    "AttributeValue",
    "Collected",
    "Entitlement",
    "RosterEntry",
    "Snapshot",
    "entitlement_key",
]

AttributeValue = str | int | bool | None

ACCOUNT_KINDS = ("human", "service", "system")
PRINCIPAL_KINDS = ("user", "group", "role", "serviceaccount")
SOURCES = ("linux", "postgres", "k8s", "import")


@dataclass(slots=True, frozen=True)
class Account:
    """An identity known to a system, with the lifecycle facts an auditor asks about."""

    system: str  # "linux:web-1", "postgres:127.0.0.1:5432/app", "k8s:prod", "import:okta"
    name: str
    kind: str  # human | service | system
    uid: int | None = None
    locked: bool | None = None
    expires: int | None = None  # µs
    password_changed: int | None = None  # µs
    last_login: int | None = None  # µs
    shell: str | None = None
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)


@dataclass(slots=True, frozen=True)
class Entitlement:
    """One thing a principal may do on a system, and the grant that gives it.

    ``granted_via`` is the evidence an auditor follows back to the source (a sudoers file and
    line, a group, an intermediate role, a binding); ``privileged`` says whether the right is
    root-equivalent or otherwise elevated on that system.
    """

    system: str
    principal: str
    principal_kind: str  # user | group | role | serviceaccount
    privilege: str  # "sudo", "group:docker", "superuser", "SELECT", "get secrets", "ssh-key"
    scope: str  # "ALL", "/usr/bin/systemctl restart nginx", "public.orders", "namespace:prod", "*"
    granted_via: str  # "/etc/sudoers.d/ops:3 (%ops)", "group:wheel", "role:app_rw", ...
    privileged: bool
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    first_seen: int | None = None  # µs; filled by the snapshot store from history


@dataclass(slots=True, frozen=True)
class Snapshot:
    """Everything one collector saw on one system at one moment."""

    id: str
    system: str
    source: str  # linux | postgres | k8s | import
    taken_at: int  # µs
    accounts: tuple[Account, ...]
    entitlements: tuple[Entitlement, ...]


@dataclass(slots=True, frozen=True)
class Collected:
    """A collector's result: the snapshot, and what it could not read (said, never hidden)."""

    snapshot: Snapshot
    warnings: tuple[str, ...] = ()


@dataclass(slots=True, frozen=True)
class RosterEntry:
    """One person from an HR or identity roster: who is (still) employed, and their logins.

    Findings match accounts against ``person``, ``email`` and ``usernames`` to find orphans
    (accounts whose owner left or was never on the roster).
    """

    person: str  # a stable identifier: employee id, or the e-mail when there is none
    active: bool
    email: str | None = None
    display_name: str | None = None
    usernames: tuple[str, ...] = ()
    left_at: int | None = None  # µs
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)


def entitlement_key(e: Entitlement) -> str:
    """The identity of an entitlement across snapshots: same key = same right.

    ``granted_via`` and attributes are deliberately left out: a right moved from one sudoers
    file to another is the same right (first_seen does not reset), while a changed scope is a
    different right. Fields are joined with ``|`` after escaping ``\\`` and ``|`` so two
    different tuples can never produce the same key.
    """
    parts = (e.system, e.principal, e.privilege, e.scope)
    return "|".join(p.replace("\\", "\\\\").replace("|", "\\|") for p in parts)
