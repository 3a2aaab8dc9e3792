"""The retention plan: which partitions have expired, what holds keep, what a purge removes.

Pure: partitions, policies, holds and ``now`` in, a plan out. ``keeptrail retention plan``
prints it and ``keeptrail retention apply`` executes the very same plan, so what is shown is
what is removed.

A partition of UTC day ``D`` in a class kept ``N`` days expires at 00:00 UTC on ``D + N + 1``:
then its *latest* possible event (``D`` 23:59:59.999999) is more than ``N`` days old, so every
event is kept at least ``N`` full days.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from keeptrail.event import datetime_to_micros, format_time
from keeptrail.protect.holds import holds_overlapping
from keeptrail.protect.retention import PolicyWarning, RetentionPolicies
from keeptrail.store.contract import Hold, PartitionInfo


@dataclass(frozen=True, slots=True)
class PartitionPlan:
    """One expired partition: the policy that expired it and the holds that may keep some.

    ``held`` is the exact number of events active holds keep, when the store counted them
    (``None``: only the time overlap of ``holds`` is known).
    """

    partition: PartitionInfo
    policy: str
    days: int
    expires_at: int
    holds: tuple[str, ...]
    held: int | None = None

    @property
    def name(self) -> str:
        """The partition's name."""
        return self.partition.name

    @property
    def to_remove(self) -> int:
        """Events the purge deletes (all, when nothing is held)."""
        kept = self.held if self.held is not None else 0
        return max(0, self.partition.events - kept)

    @property
    def whole(self) -> bool:
        """Whether the whole partition goes (key destroyed) rather than part of it."""
        return not self.holds or self.held == 0

    def to_json(self) -> dict[str, Any]:
        """The JSON form ``retention plan --json`` prints."""
        p = self.partition
        return {
            "partition": p.name,
            "day": _day_text(p.day),
            "class": p.retention_class,
            "policy": self.policy,
            "days": self.days,
            "expired_at": format_time(self.expires_at),
            "state": p.state,
            "events": p.events,
            "first_leaf": p.first_leaf,
            "last_leaf": p.last_leaf,
            "holds": list(self.holds),
            "held_events": self.held,
            "events_to_remove": self.to_remove,
            "key_destroyed": self.whole,
        }


@dataclass(frozen=True, slots=True)
class RetentionPlan:
    """Everything a retention run would do at ``now``."""

    now: int
    expired: tuple[PartitionPlan, ...]
    retained: int
    warnings: tuple[PolicyWarning, ...]

    @property
    def events_to_remove(self) -> int:
        """Total events the plan deletes (an upper bound unless :attr:`exact`)."""
        return sum(p.to_remove for p in self.expired)

    @property
    def exact(self) -> bool:
        """False when holds overlap a partition and the held events were not counted.

        Then the purge keeps whatever those holds match, so it removes at most
        :attr:`events_to_remove`; ``apply`` reports the exact numbers.
        """
        return all(p.held is not None or not p.holds for p in self.expired)

    def to_json(self) -> dict[str, Any]:
        """The JSON form ``retention plan --json`` prints."""
        return {
            "now": format_time(self.now),
            "expired": [p.to_json() for p in self.expired],
            "partitions_retained": self.retained,
            "events_to_remove": self.events_to_remove,
            "exact": self.exact,
            "warnings": [str(w) for w in self.warnings],
        }


def expires_at(day: int, days: int) -> int:
    """Microseconds at which a partition of ``day`` (YYYYMMDD) kept ``days`` days expires."""
    start = datetime.combine(_day_date(day), datetime.min.time(), tzinfo=UTC)
    return datetime_to_micros(start + timedelta(days=days + 1))


def compute_plan(
    partitions: Sequence[PartitionInfo],
    policies: RetentionPolicies,
    holds: Sequence[Hold],
    *,
    now: int,
    held_counts: Mapping[str, int] | None = None,
) -> RetentionPlan:
    """The expired partitions at ``now`` (oldest first) and how many stay.

    Purged partitions are history, not candidates. A ``partial`` partition (held events
    left by an earlier purge) is a candidate again: its holds may have been released since.
    ``held_counts`` (partition → events the active holds keep) makes the counts exact.
    """
    expired: list[PartitionPlan] = []
    retained = 0
    for part in sorted(partitions, key=lambda p: (p.day, p.name)):
        if part.state == "purged":
            continue
        policy, days = policies.days_for(part.retention_class)
        deadline = expires_at(part.day, days)
        if deadline > now:
            retained += 1
            continue
        over = holds_overlapping(holds, part.first_time, part.last_time)
        held = None
        if held_counts is not None:
            held = held_counts.get(part.name, 0) if over else 0
        expired.append(
            PartitionPlan(
                partition=part,
                policy=policy,
                days=days,
                expires_at=deadline,
                holds=tuple(h.id for h in over),
                held=held,
            )
        )
    return RetentionPlan(
        now=now, expired=tuple(expired), retained=retained, warnings=tuple(policies.warnings())
    )


def _day_date(day: int) -> date:
    return date(day // 10000, day // 100 % 100, day % 100)


def _day_text(day: int) -> str:
    return _day_date(day).isoformat()
