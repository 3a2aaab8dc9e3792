"""The snapshot store: history kept, first_seen computed from it, lookups, the roster."""

from __future__ import annotations

import stat
from dataclasses import replace
from pathlib import Path

import pytest

from keeptrail.errors import UserError
from keeptrail.permissions.model import (
    Account,
    Entitlement,
    RosterEntry,
    Snapshot,
    entitlement_key,
)
from keeptrail.permissions.snapshots import SnapshotStore, open_snapshots

DAY = 86_400_000_000
T0 = 1_750_000_000_000_000


def ent(principal: str, privilege: str = "sudo", scope: str = "ALL", **kw: object) -> Entitlement:
    return Entitlement(
        system="linux:web-1",
        principal=principal,
        principal_kind="user",
        privilege=privilege,
        scope=scope,
        granted_via=str(kw.pop("granted_via", "/etc/sudoers:3 (alice)")),
        privileged=bool(kw.pop("privileged", True)),
        attributes=dict(kw.pop("attributes", {"nopasswd": True})),  # type: ignore[call-overload]
        first_seen=kw.pop("first_seen", None),  # type: ignore[arg-type]
    )


def snap(
    sid: str, taken_at: int, *entitlements: Entitlement, system: str = "linux:web-1"
) -> Snapshot:
    accounts = (Account(system, "alice", "human", uid=1000, locked=False, attributes={"gid": 7}),)
    return Snapshot(sid, system, "linux", taken_at, accounts, tuple(entitlements))


@pytest.fixture
def store(tmp_path: Path) -> SnapshotStore:
    return open_snapshots(tmp_path)


def test_key_is_injective_even_with_separators_in_values() -> None:
    """Two different (principal, scope) pairs never share a key, even with ``|`` inside."""
    a = ent("a|b", scope="c")
    b = ent("a", scope="b|c")
    assert entitlement_key(a) != entitlement_key(b)
    assert entitlement_key(ent("alice")) == "linux:web-1|alice|sudo|ALL"
    assert entitlement_key(replace(ent("alice"), granted_via="elsewhere")) == entitlement_key(
        ent("alice")
    )


def test_round_trip_keeps_every_field(store: SnapshotStore) -> None:
    """What is saved is what is loaded: accounts, entitlements, attributes, booleans."""
    saved = store.save(
        snap("s1", T0, ent("alice"), ent("bob", "group:docker", "*", privileged=False))
    )
    loaded = store.get("s1")
    assert loaded == saved
    assert loaded.accounts[0].locked is False
    assert loaded.accounts[0].attributes == {"gid": 7}
    assert loaded.entitlements[1].privileged is False


def test_first_seen_carries_over_and_restarts_after_a_gap(store: SnapshotStore) -> None:
    """A right present in the previous snapshot keeps its first_seen; one that vanished restarts."""
    s1 = store.save(snap("s1", T0, ent("alice"), ent("bob")))
    assert {e.principal: e.first_seen for e in s1.entitlements} == {"alice": T0, "bob": T0}
    s2 = store.save(snap("s2", T0 + DAY, ent("alice", granted_via="/etc/sudoers.d/x:1 (alice)")))
    assert s2.entitlements[0].first_seen == T0  # same key: moved file, same right
    s3 = store.save(snap("s3", T0 + 2 * DAY, ent("alice"), ent("bob"), ent("carol")))
    seen = {e.principal: e.first_seen for e in s3.entitlements}
    assert seen == {"alice": T0, "bob": T0 + 2 * DAY, "carol": T0 + 2 * DAY}
    assert store.get("s3").entitlements[0].first_seen == T0
    assert store.first_seen(entitlement_key(ent("bob"))) == T0


def test_first_seen_is_per_system(store: SnapshotStore) -> None:
    """Another host's history does not date this host's rights."""
    store.save(snap("a1", T0, ent("alice")))
    other = Entitlement("linux:web-2", "alice", "user", "sudo", "ALL", "x", True)
    s = store.save(Snapshot("b1", "linux:web-2", "linux", T0 + DAY, (), (other,)))
    assert s.entitlements[0].first_seen == T0 + DAY


def test_collector_grant_date_wins_when_earlier(store: SnapshotStore) -> None:
    """An import that knows the grant date keeps it (it is better evidence than our first look)."""
    s = store.save(
        snap("s1", T0, ent("alice", first_seen=T0 - 30 * DAY), ent("bob", first_seen=T0 + 5))
    )
    assert [e.first_seen for e in s.entitlements] == [T0 - 30 * DAY, T0]


def test_latest_previous_and_listing(store: SnapshotStore) -> None:
    """latest/previous follow taken_at (not insertion order) and stay within one system."""
    store.save(snap("s2", T0 + DAY, ent("alice")))
    store.save(snap("s1", T0, ent("alice")))
    store.save(snap("k1", T0 + 2 * DAY, system="k8s:prod"))
    store.save(snap("s3", T0 + 3 * DAY, ent("alice")))
    latest = store.latest(system="linux:web-1")
    assert latest is not None
    assert latest.id == "s3"
    assert store.latest(source="linux") is not None
    assert store.latest() is not None
    assert store.latest().id == "s3"
    assert store.previous(latest).id == "s2"  # type: ignore[union-attr]
    assert store.previous(store.get("s2")).id == "s1"  # type: ignore[union-attr]
    assert store.previous(store.get("s1")) is None
    assert [i.id for i in store.list()] == ["s3", "k1", "s2", "s1"]
    assert [i.id for i in store.list(system="k8s:prod")] == ["k1"]
    assert [(i.entitlements, i.privileged) for i in store.list(limit=1)] == [(1, 1)]
    assert sorted(s.id for s in store.latest_per_system()) == ["k1", "s3"]


def test_get_by_prefix_and_clear_errors(store: SnapshotStore) -> None:
    """A unique prefix finds a snapshot; unknown, ambiguous and duplicate ids are clear errors."""
    store.save(snap("0191-aaaa", T0))
    store.save(snap("0191-aabb", T0 + 1))
    assert store.get("0191-aaa").id == "0191-aaaa"
    with pytest.raises(UserError, match="ambiguous"):
        store.get("0191-aa")
    with pytest.raises(UserError, match="no snapshot"):
        store.get("zzz")
    with pytest.raises(UserError, match="already stored"):
        store.save(snap("0191-aaaa", T0))


def test_store_file_is_private_and_reopens(tmp_path: Path) -> None:
    """permissions.db is created 0600 (who may do what is sensitive) and survives reopening."""
    s = open_snapshots(tmp_path)
    s.save(snap("s1", T0, ent("alice")))
    s.close()
    assert stat.S_IMODE((tmp_path / "permissions.db").stat().st_mode) == 0o600
    with open_snapshots(tmp_path) as again:
        assert again.get("s1").entitlements[0].principal == "alice"


def test_roster_latest_import_is_current(store: SnapshotStore) -> None:
    """Roster imports are kept whole; the newest one is the roster."""
    assert store.roster() is None
    store.import_roster([RosterEntry("E1", True, usernames=("alice",))], source="hr-jan.csv")
    entries = [
        RosterEntry("E1", True, email="alice@example.com", usernames=("alice", "amartin")),
        RosterEntry("E2", False, display_name="Dave", left_at=T0, attributes={"dept": "ops"}),
    ]
    store.import_roster(entries, source="hr-feb.csv")
    roster = store.roster()
    assert roster is not None
    assert roster.source == "hr-feb.csv"
    assert list(roster.entries) == entries
