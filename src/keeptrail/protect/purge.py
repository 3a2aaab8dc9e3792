"""Carrying out a retention plan, and the one audit event that records it.

For each expired partition the store does the destructive part
(:meth:`keeptrail.store.contract.Store.purge_partition`: data key destroyed first, then the
table dropped; or, when active holds keep some events, only the other rows deleted and the key
kept). This module decides nothing new: it runs the plan it is given, then appends ONE
``audit.retention_purge`` event saying what went, under which policy, with which leaf
ranges. The event's id is chosen before the first purge and handed to the store, so every
purged partition (and ``verify``'s report of purged leaves) names the event that explains it.

If a purge fails half-way, what was already removed is still recorded (outcome ``failure``,
with the error), then the error is raised: a purge is never left unexplained.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from keeptrail.event import DetailValue, Event, format_time, uuid7
from keeptrail.protect.plan import PartitionPlan, RetentionPlan
from keeptrail.store.contract import Hold, PurgeResult, Store

MAX_RANGES: Final = 500  # leaf ranges listed in one purge event


@dataclass(slots=True)
class ApplyResult:
    """What ``retention apply`` did: each partition's outcome and the event recording it."""

    purge_event_id: str | None
    done: list[tuple[PartitionPlan, PurgeResult]] = field(default_factory=list)

    @property
    def deleted(self) -> int:
        """Events removed in all partitions."""
        return sum(r.deleted for _, r in self.done)

    @property
    def kept(self) -> int:
        """Held events left in place."""
        return sum(r.kept for _, r in self.done)

    @property
    def keys_destroyed(self) -> int:
        """Partitions crypto-shredded."""
        return sum(1 for _, r in self.done if r.key_destroyed)


def apply_plan(
    store: Store,
    plan: RetentionPlan,
    holds: Sequence[Hold],
    *,
    by: str,
    event_id: str | None = None,
) -> ApplyResult:
    """Purge every expired partition of ``plan``, then record the purge as one event.

    ``holds`` must be the active holds the plan was computed with; the store re-checks every
    event against them before deleting it. Nothing is recorded when nothing was expired.
    """
    if not plan.expired:
        return ApplyResult(None)
    purge_id = event_id or uuid7()
    result = ApplyResult(purge_id)
    active = [h for h in holds if h.active]
    try:
        for item in plan.expired:
            result.done.append(
                (item, store.purge_partition(item.name, holds=active, purge_event_id=purge_id))
            )
    except Exception as exc:
        if result.done:
            store.append([purge_event(purge_id, result.done, plan, active, by=by, error=exc)])
        raise
    store.append([purge_event(purge_id, result.done, plan, active, by=by)])
    return result


def purge_event(
    event_id: str,
    done: Sequence[tuple[PartitionPlan, PurgeResult]],
    plan: RetentionPlan,
    holds: Sequence[Hold],
    *,
    by: str,
    error: BaseException | None = None,
) -> Event:
    """The ``audit.retention_purge`` event: counts, partitions, leaf ranges, policy applied.

    Details are flat lists of text (the event model has no nested objects), one entry per
    partition in the same order: ``partitions[i]`` was purged under ``policies[i]``.
    """
    now = time.time_ns() // 1000
    deleted = sum(r.deleted for _, r in done)
    kept = sum(r.kept for _, r in done)
    ranges = [f"{r.partition}:{first}-{last}" for _, r in done for first, last in r.leaf_ranges]
    if len(ranges) > MAX_RANGES:  # interleaved holds can leave many runs; the store has all
        ranges = [*ranges[:MAX_RANGES], f"... {len(ranges) - MAX_RANGES} more ranges"]
    times = [(r.first_time, r.last_time) for _, r in done if r.first_time is not None]
    details: dict[str, DetailValue] = {
        "purge_id": event_id,
        "partitions": [r.partition for _, r in done],
        "policies": [f"{p.policy}:{p.days}d" for p, _ in done],
        "states": [r.state for _, r in done],
        "leaf_ranges": ranges,
        "deleted": deleted,
        "kept": kept,
        "keys_destroyed": sum(1 for _, r in done if r.key_destroyed),
        "holds": sorted({h.id for h in holds}),
        "plan_time": format_time(plan.now),
        "first_time": format_time(min(t[0] for t in times if t[0] is not None)) if times else None,
        "last_time": format_time(max(t[1] for t in times if t[1] is not None)) if times else None,
    }
    if error is not None:
        details["error"] = f"{type(error).__name__}: {error}"[:500]
    names = ", ".join(r.partition for _, r in done)
    summary = (
        f"retention purge: {deleted} events removed from {len(done)} partitions ({names})"
        + (f", {kept} kept under legal hold" if kept else "")
        + (f"; stopped by an error: {details['error']}" if error is not None else "")
    )
    return Event(
        time=now,
        ingested_at=now,
        category="audit",
        action="audit.retention_purge",
        outcome="failure" if error is not None else "success",
        severity="medium" if error is None else "high",
        actor_name=by,
        actor_type="user",
        target_system="keeptrail",
        target_resource="events",
        target_resource_type="partition",
        details={k: v for k, v in details.items() if v is not None},
        collector_host=socket.gethostname(),
        collector_source="cli",
        raw=summary,
        id=event_id,
    )
