"""The campaign scope language over entitlement fields, and campaign rules without I/O."""

from __future__ import annotations

import pytest

from keeptrail.errors import UserError
from keeptrail.permissions.model import Entitlement, Snapshot
from keeptrail.permissions.reviews import items_digest, parse_due, parse_reviewers, select_items
from keeptrail.permissions.scope import ScopeError, parse_scope

RIGHTS = [
    Entitlement("linux:web-1", "alice", "user", "sudo", "ALL", "/etc/sudoers:1", True),
    Entitlement("linux:web-1", "bob", "user", "group:users", "*", "/etc/group:3", False),
    Entitlement(
        "postgres:db:5432/app",
        "app_rw",
        "role",
        "SELECT",
        "public.orders",
        "GRANT",
        False,
        {"grantable": True},
    ),
    Entitlement(
        "k8s:prod",
        "system:serviceaccount:ci:deployer",
        "serviceaccount",
        "get pods",
        "namespace:ci",
        "rolebinding:ci/deployer",
        False,
    ),
]


def chosen(scope: str) -> list[str]:
    selected = parse_scope(scope)
    return [e.principal for e in RIGHTS if selected(e)]


@pytest.mark.parametrize(
    ("scope", "principals"),
    [
        ("", ["alice", "bob", "app_rw", "system:serviceaccount:ci:deployer"]),
        ("system:linux:* AND privileged:true", ["alice"]),
        ("system:linux:* -privileged:true", ["bob"]),
        ("kind:role OR kind:serviceaccount", ["app_rw", "system:serviceaccount:ci:deployer"]),
        ("privilege:group:*", ["bob"]),
        ('scope:"public.orders"', ["app_rw"]),
        ("attributes.grantable:true", ["app_rw"]),
        ("principal:*deployer", ["system:serviceaccount:ci:deployer"]),
        ("(principal:alice OR principal:bob) NOT privilege:sudo", ["bob"]),
        ("via:/etc/*", ["alice", "bob"]),
        ("principal:ALICE", []),  # values are case-sensitive, like the systems they come from
    ],
)
def test_scope_selects(scope: str, principals: list[str]) -> None:
    """Each filter selects exactly the entitlements it names."""
    assert chosen(scope) == principals


@pytest.mark.parametrize(
    ("scope", "message"),
    [
        ("alice", "bare word"),
        ("colour:red", "unknown field 'colour'"),
        ("privileged:yes", "true or false"),
        ("principal>a", "only ':'"),
        ("(principal:a", "unclosed"),
        ('principal:"open', "unterminated"),
    ],
)
def test_bad_scopes_are_clear_errors(scope: str, message: str) -> None:
    """A scope that does not parse says why (one line in the CLI, a 400 in the API)."""
    with pytest.raises(ScopeError, match=message):
        parse_scope(scope)


def test_select_items_numbers_and_digest() -> None:
    """Items are numbered from 1, duplicates across snapshots dropped; the digest pins them."""
    a = Snapshot("s1", "linux:web-1", "linux", 1, (), tuple(RIGHTS[:2]))
    b = Snapshot("s2", "linux:web-1", "linux", 2, (), tuple(RIGHTS[:1]))
    items = select_items([a, b], "system:linux:*")
    assert [(i.number, i.entitlement.principal, i.snapshot) for i in items] == [
        (1, "alice", "s1"),
        (2, "bob", "s1"),
    ]
    assert items_digest(items) != items_digest(items[:1])
    assert len(items_digest(items)) == 64


def test_due_and_reviewers() -> None:
    """Due dates are relative (30d) or absolute; reviewers are deduplicated and required."""
    now = 1_700_000_000_000_000
    assert parse_due("30d", now) == now + 30 * 86_400_000_000
    assert parse_due("2026-12-31", now) == 1_798_675_200_000_000
    assert parse_due(None, now) is None
    with pytest.raises(UserError, match="invalid due date"):
        parse_due("soon", now)
    assert parse_reviewers("alice, bob,alice") == ("alice", "bob")
    with pytest.raises(UserError, match="at least one reviewer"):
        parse_reviewers(" , ")
    with pytest.raises(UserError, match="invalid reviewer"):
        parse_reviewers(["bad\x1bname"])
