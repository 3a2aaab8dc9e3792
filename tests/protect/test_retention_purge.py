"""Retention purges on a real sealed SQLite store with a real keyring: what goes, what stays."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.factories import make_event

from keeptrail.event import Event, parse_time
from keeptrail.ledger.note import Signer, generate_signer
from keeptrail.ledger.verify import verify_ledger
from keeptrail.protect.holds import new_hold
from keeptrail.protect.keyring import Keyring, KeyUnavailable, open_keyring
from keeptrail.protect.plan import compute_plan
from keeptrail.protect.purge import apply_plan
from keeptrail.protect.retention import RetentionPolicies, make_policy
from keeptrail.query import parse
from keeptrail.store.sqlite import SQLiteStore

POLICIES = RetentionPolicies(
    [make_policy("database", 90, categories=["database"])], default_days=400
)
DAY1 = parse_time("2024-01-01T10:00:00Z")
DAY2 = parse_time("2024-01-02T10:00:00Z")
LATER = parse_time("2024-06-01T00:00:00Z")  # database (90d) expired, default (400d) not


@dataclass
class Sealed:
    """A sealed store, its keyring and how to open them again."""

    data: Path
    store: SQLiteStore
    keyring: Keyring
    signer: Signer

    def reopen(self, path: Path | None = None) -> SQLiteStore:
        keyring = open_keyring(self.data, {}, create=False)
        assert keyring is not None
        return SQLiteStore(
            path or self.data / "events.db",
            signer=self.signer,
            keyring=keyring,
            classify=POLICIES.classify,
        )


@pytest.fixture
def sealed(tmp_path: Path) -> Iterator[Sealed]:
    """Two days of database queries (alice and bob) and of logins, sealed with a keyring."""
    data = tmp_path / "data"
    data.mkdir()
    keyring = open_keyring(data, {}, create=True)
    assert keyring is not None
    signer = generate_signer("keeptrail/test/0")
    store = SQLiteStore(
        data / "events.db", signer=signer, keyring=keyring, classify=POLICIES.classify
    )
    events: list[Event] = []
    for day in (DAY1, DAY2):
        for i in range(30):
            user = "alice" if i % 10 == 0 else "bob"
            events.append(
                make_event(
                    time=day + i * 1_000_000,
                    category="database",
                    action="db.select",
                    actor_name=user,
                    raw=f"LOG: statement: SELECT secret_{i} FROM payroll -- {user}",
                    details={"query": f"SELECT secret_{i} FROM payroll"},
                )
            )
        events.extend(make_event(time=day + i) for i in range(5))
    assert store.append(events) == len(events)
    yield Sealed(data, store, keyring, signer)
    store.close()


def states(store: SQLiteStore) -> dict[str, tuple[str, int]]:
    return {p.name: (p.state, p.events) for p in store.partitions()}


def test_apply_removes_exactly_what_the_plan_shows_and_records_one_event(sealed: Sealed) -> None:
    """Expired partitions go (keys destroyed), the others stay; one purge event lists them."""
    store = sealed.store
    plan = compute_plan(store.partitions(), POLICIES, [], now=LATER)
    assert [p.name for p in plan.expired] == ["p20240101_database", "p20240102_database"]
    assert plan.events_to_remove == 60
    result = apply_plan(store, plan, [], by="retention-test")
    assert result.deleted == plan.events_to_remove
    assert [r.partition for _, r in result.done] == [p.name for p in plan.expired]
    assert result.keys_destroyed == 2
    after = states(store)
    assert after["p20240101_database"] == ("purged", 0)
    assert after["p20240102_database"] == ("purged", 0)
    assert after["p20240101_default"] == ("live", 5)
    assert all(sealed.keyring.is_destroyed(p.name) for p in plan.expired)
    assert store.search(parse("category:database"), limit=100).events == []
    purge = store.get(result.purge_event_id or "")
    assert purge is not None
    assert (purge.category, purge.action, purge.actor_name) == (
        "audit",
        "audit.retention_purge",
        "retention-test",
    )
    assert purge.details["partitions"] == ["p20240101_database", "p20240102_database"]
    assert purge.details["policies"] == ["database:90d", "database:90d"]
    assert purge.details["deleted"] == 60
    assert purge.details["keys_destroyed"] == 2
    ranges = purge.details["leaf_ranges"]
    assert isinstance(ranges, list)
    assert [r.split(":")[0] for r in ranges] == ["p20240101_database", "p20240102_database"]
    purged = {p.name: p.purge_event for p in store.partitions() if p.state == "purged"}
    assert set(purged.values()) == {result.purge_event_id}
    again = compute_plan(store.partitions(), POLICIES, [], now=LATER)
    assert again.expired == ()


def test_nothing_expired_records_nothing(sealed: Sealed) -> None:
    """A run with nothing to purge changes nothing and appends no event."""
    before = sealed.store.count()
    plan = compute_plan(sealed.store.partitions(), POLICIES, [], now=DAY2)
    result = apply_plan(sealed.store, plan, [], by="x")
    assert result.purge_event_id is None
    assert sealed.store.count() == before


def test_a_copy_taken_before_the_purge_cannot_decrypt_the_purged_partition(
    sealed: Sealed, tmp_path: Path
) -> None:
    """Crypto-shredding: a backup from before the purge, with today's keyring, names the
    partition it can no longer decrypt — and still reads what was not purged."""
    store = sealed.store
    backup_path = tmp_path / "backup-events.db"
    with sqlite3.connect(backup_path) as dst:
        src = sqlite3.connect(store.path)
        src.backup(dst)
        src.close()
    victim = store.search(parse("category:database"), until=DAY2, limit=1).events[0]
    control = sealed.reopen(backup_path)
    try:
        assert control.get(victim.id) == victim  # the copy is readable before the purge
    finally:
        control.close()

    plan = compute_plan(store.partitions(), POLICIES, [], now=LATER)
    apply_plan(store, plan, [], by="x")

    backup = sealed.reopen(backup_path)
    try:
        with pytest.raises(KeyUnavailable) as info:
            backup.get(victim.id)
        assert info.value.partition == "p20240101_database"
        assert "p20240101_database" in str(info.value)
        kept = backup.search(parse("category:authentication"), limit=100).events
        assert len(kept) == 10  # the default-class partitions were not purged
    finally:
        backup.close()
    raw = backup_path.read_bytes()
    assert b"secret_" not in raw  # and the copy never held the queries in clear


def test_held_events_survive_with_their_key_until_the_hold_is_released(sealed: Sealed) -> None:
    """Events under an active hold stay readable; the rest of the partition goes; after the
    release the next run removes them and destroys the key."""
    store = sealed.store
    hold = new_hold(
        hold_id="0193f7e0-0000-7000-8000-00000000a11c",
        query='user:alice AND "payroll"',  # free text: matched on the decrypted event
        since=DAY1,
        until=DAY2,
        reason="case 4711",
        by="legal",
        now=DAY2,
    )
    store.add_hold(hold)
    holds = store.holds()
    plan = compute_plan(store.partitions(), POLICIES, holds, now=LATER)
    assert [p.holds for p in plan.expired] == [(hold.id,), ()]
    result = apply_plan(store, plan, holds, by="x")
    assert result.kept == 3
    assert result.deleted == 57
    after = states(store)
    assert after["p20240101_database"] == ("partial", 3)
    assert after["p20240102_database"] == ("purged", 0)
    assert not sealed.keyring.is_destroyed("p20240101_database")
    assert sealed.keyring.is_destroyed("p20240102_database")
    survivors = store.search(parse("category:database"), limit=100).events
    assert sorted(e.details["query"] for e in survivors) == [  # type: ignore[type-var]
        "SELECT secret_0 FROM payroll",
        "SELECT secret_10 FROM payroll",
        "SELECT secret_20 FROM payroll",
    ]
    assert all(e.actor_name == "alice" and DAY1 <= e.time < DAY2 for e in survivors)
    purge = store.get(result.purge_event_id or "")
    assert purge is not None
    assert purge.details["kept"] == 3
    assert purge.details["states"] == ["partial", "purged"]
    assert purge.details["holds"] == [hold.id]

    store.release_hold(hold.id, "legal", LATER)
    later = compute_plan(store.partitions(), POLICIES, store.holds(), now=LATER)
    assert [p.name for p in later.expired] == ["p20240101_database"]
    second = apply_plan(store, later, store.holds(), by="x")
    assert second.deleted == 3
    assert states(store)["p20240101_database"] == ("purged", 0)
    assert sealed.keyring.is_destroyed("p20240101_database")


def test_verify_passes_after_purges_and_names_the_purge_event(sealed: Sealed) -> None:
    """Purged leaves are reported as purged (with the event that removed them), not damage."""
    store = sealed.store
    plan = compute_plan(store.partitions(), POLICIES, [], now=LATER)
    result = apply_plan(store, plan, [], by="x")
    report = verify_ledger(store, sealed.signer.verifier())
    assert report.ok, report.findings
    by_partition = {p.partition: p for p in report.purged}
    assert set(by_partition) == {"p20240101_database", "p20240102_database"}
    assert {p.purge_event for p in report.purged} == {result.purge_event_id}
    assert sum(p.events for p in report.purged) == 60


def test_verify_still_catches_tampering_next_to_a_purged_range(sealed: Sealed) -> None:
    """An edited clear column in a surviving partition is found even after a purge."""
    store = sealed.store
    apply_plan(store, compute_plan(store.partitions(), POLICIES, [], now=LATER), [], by="x")
    db = sqlite3.connect(store.path)
    with db:
        changed = db.execute(
            "UPDATE \"p20240101_default\" SET actor_name = 'mallory'"
            ' WHERE leaf_index = (SELECT min(leaf_index) FROM "p20240101_default")'
        ).rowcount
    db.close()
    assert changed == 1
    report = verify_ledger(store, sealed.signer.verifier())
    assert not report.ok
    assert report.first is not None
    assert report.first.leaf_index == 30  # the first leaf of p20240101_default
    assert {p.partition for p in report.purged} == {"p20240101_database", "p20240102_database"}


def test_a_purge_stopped_half_way_is_still_recorded(tmp_path: Path) -> None:
    """When the second partition cannot be purged (its key is out of reach), the first one's
    removal is recorded as a failed audit.retention_purge before the error surfaces."""
    data = tmp_path / "data"
    data.mkdir()
    signer = generate_signer("keeptrail/test/0")
    plain = SQLiteStore(data / "events.db", signer=signer, classify=POLICIES.classify)
    plain.append([make_event(time=DAY1 + i, category="database") for i in range(4)])
    plain.close()
    keyring = open_keyring(data, {}, create=True)
    sealed = SQLiteStore(
        data / "events.db", signer=signer, keyring=keyring, classify=POLICIES.classify
    )
    sealed.append([make_event(time=DAY2 + i, category="database") for i in range(3)])
    sealed.close()
    keyring.close()

    store = SQLiteStore(data / "events.db", signer=signer, classify=POLICIES.classify)
    try:
        plan = compute_plan(store.partitions(), POLICIES, [], now=LATER)
        assert [p.name for p in plan.expired] == ["p20240101_database", "p20240102_database"]
        with pytest.raises(KeyUnavailable, match="p20240102_database"):
            apply_plan(store, plan, [], by="x", event_id="0193f7e0-0000-7000-8000-0000000000ee")
        record = store.get("0193f7e0-0000-7000-8000-0000000000ee")
        assert record is not None
        assert record.outcome == "failure"
        assert record.details["partitions"] == ["p20240101_database"]
        assert record.details["deleted"] == 4
        assert "KeyUnavailable" in str(record.details["error"])
        assert {p.name: p.state for p in store.partitions()}["p20240102_database"] == "live"
    finally:
        store.close()


def test_the_purge_event_lists_at_most_500_leaf_ranges() -> None:
    """Interleaved holds can leave thousands of runs: the event keeps 500 and counts the rest."""
    from keeptrail.protect.plan import PartitionPlan, RetentionPlan  # noqa: PLC0415
    from keeptrail.protect.purge import purge_event  # noqa: PLC0415
    from keeptrail.store.contract import PartitionInfo, PurgeResult  # noqa: PLC0415

    info = PartitionInfo("p20240101_database", 20240101, "database", True, 0, DAY1, DAY1, 0, 0,
                         "partial", 0)  # fmt: skip
    item = PartitionPlan(info, "database", 90, LATER, ("h",))
    runs = [(2 * i, 2 * i) for i in range(600)]
    result = PurgeResult("p20240101_database", "partial", 600, 600, False, runs, DAY1, DAY1)
    plan = RetentionPlan(LATER, (item,), 0, ())
    event = purge_event("e", [(item, result)], plan, [], by="x")
    ranges = event.details["leaf_ranges"]
    assert isinstance(ranges, list)
    assert len(ranges) == 501
    assert ranges[0] == "p20240101_database:0-0"
    assert ranges[-1] == "... 100 more ranges"
    assert "kept under legal hold" in event.raw
