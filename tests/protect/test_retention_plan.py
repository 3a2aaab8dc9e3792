"""The retention plan: expiry dates, partial partitions and holds, computed without a store."""

from __future__ import annotations

from keeptrail.event import parse_time
from keeptrail.protect.plan import compute_plan, expires_at
from keeptrail.protect.retention import RetentionPolicies, make_policy
from keeptrail.store.contract import Hold, PartitionInfo

POLICIES = RetentionPolicies(
    [make_policy("database", 90, categories=["database"])], default_days=400
)


def part(day: int, cls: str, *, events: int = 10, state: str = "live") -> PartitionInfo:
    first = parse_time(f"{day // 10000}-{day // 100 % 100:02d}-{day % 100:02d}T00:00:00Z")
    return PartitionInfo(
        name=f"p{day}_{cls}",
        day=day,
        retention_class=cls,
        sealed=True,
        events=events,
        first_time=first,
        last_time=first + 86_399_000_000,
        first_leaf=day % 1000,
        last_leaf=day % 1000 + events,
        state=state,
        created_at=first,
    )


def hold(since: str | None, until: str | None, *, released: bool = False) -> Hold:
    return Hold(
        id="h1",
        query="user:alice",
        since=parse_time(since) if since else None,
        until=parse_time(until) if until else None,
        reason="case",
        created_by="legal",
        created_at=0,
        released_at=1 if released else None,
    )


def test_a_partition_expires_when_its_last_possible_event_is_older_than_the_policy() -> None:
    """Day D kept N days expires at 00:00 UTC on D+N+1 — every event kept N full days."""
    assert expires_at(20240101, 90) == parse_time("2024-04-01T00:00:00Z")  # Jan 1 + 91 days
    parts = [part(20240101, "database")]
    just_before = compute_plan(parts, POLICIES, [], now=parse_time("2024-03-31T23:59:59Z"))
    assert just_before.expired == ()
    assert just_before.retained == 1
    at = compute_plan(parts, POLICIES, [], now=parse_time("2024-04-01T00:00:00Z"))
    assert [p.name for p in at.expired] == ["p20240101_database"]
    assert at.expired[0].policy == "database"
    assert at.expired[0].days == 90


def test_each_class_uses_its_own_policy_and_unknown_classes_the_default() -> None:
    """One day, three classes: database (90d) expires first; default and a removed class at 400d."""
    parts = [part(20240101, "database"), part(20240101, "default"), part(20240101, "gone")]
    plan = compute_plan(parts, POLICIES, [], now=parse_time("2024-06-01T00:00:00Z"))
    assert [p.name for p in plan.expired] == ["p20240101_database"]
    later = compute_plan(parts, POLICIES, [], now=parse_time("2025-03-01T00:00:00Z"))
    assert [(p.name, p.policy, p.days) for p in later.expired] == [
        ("p20240101_database", "database", 90),
        ("p20240101_default", "default", 400),
        ("p20240101_gone", "default", 400),
    ]


def test_purged_partitions_are_history_and_partial_ones_are_candidates_again() -> None:
    """A purged partition is not planned twice; a partial one is (its hold may be released)."""
    parts = [
        part(20240101, "database", state="purged"),
        part(20240102, "database", state="partial"),
    ]
    plan = compute_plan(parts, POLICIES, [], now=parse_time("2025-01-01T00:00:00Z"))
    assert [p.name for p in plan.expired] == ["p20240102_database"]
    assert plan.retained == 0


def test_holds_overlapping_in_time_are_named_and_released_ones_ignored() -> None:
    """An active hold whose range meets the partition's day is listed; others are not."""
    parts = [part(20240101, "database", events=10), part(20240105, "database", events=5)]
    now = parse_time("2025-01-01T00:00:00Z")
    plan = compute_plan(parts, POLICIES, [hold("2024-01-01T12:00:00Z", "2024-01-02")], now=now)
    assert [p.holds for p in plan.expired] == [("h1",), ()]
    assert [p.whole for p in plan.expired] == [False, True]
    assert not plan.exact  # held events not counted: 15 is an upper bound
    assert plan.events_to_remove == 15
    released = compute_plan(parts, POLICIES, [hold(None, None, released=True)], now=now)
    assert [p.holds for p in released.expired] == [(), ()]
    assert released.events_to_remove == 15


def test_exact_held_counts_make_the_totals_exact() -> None:
    """With the store's held counts, events_to_remove subtracts exactly the held events."""
    parts = [part(20240101, "database", events=10), part(20240105, "database", events=5)]
    now = parse_time("2025-01-01T00:00:00Z")
    plan = compute_plan(
        parts, POLICIES, [hold(None, None)], now=now, held_counts={"p20240101_database": 3}
    )
    assert [(p.held, p.to_remove, p.whole) for p in plan.expired] == [(3, 7, False), (0, 5, True)]
    assert plan.events_to_remove == 12
    assert plan.exact
    assert plan.to_json()["events_to_remove"] == 12


def test_plan_carries_the_policy_warnings() -> None:
    """plan output includes the PCI warning for a class shorter than 12 months."""
    plan = compute_plan([], POLICIES, [], now=0)
    assert [w.policy for w in plan.warnings] == ["database"]
