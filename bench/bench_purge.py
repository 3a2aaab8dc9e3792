"""Measure retention plan + apply on sealed partitions of 100,000 and 1,000,000 events.

Run: .venv/bin/python bench/bench_purge.py [sizes...]   (default: 100000 1000000)

For each size a fresh sealed SQLite store (real keyring, AES-256-GCM) gets ``size`` database
events on 2024-01-01 (class ``database``, 90 days) and 1,000 logins the same day (class
``default``, kept). Then ``compute_plan`` + ``apply_plan`` purge the database partition as
``keeptrail retention apply`` does: key destroyed, table detached, one audit event; then
``store.reclaim()`` frees the detached table's pages (timed separately: it is the part that
grows with ``size``, and it runs after the purge is complete and recorded). The figure that
matters is that the whole-partition purge does not grow with ``size``. For contrast, a second
store of the same size is purged with a legal hold on 1% of the events (a partial purge must
look at the rows, so it does grow).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

from keeptrail.event import Event, parse_time, uuid7
from keeptrail.ledger.note import generate_signer
from keeptrail.protect.holds import new_hold
from keeptrail.protect.keyring import open_keyring
from keeptrail.protect.plan import compute_plan
from keeptrail.protect.purge import apply_plan
from keeptrail.protect.retention import RetentionPolicies, make_policy
from keeptrail.store.sqlite import SQLiteStore

POLICIES = RetentionPolicies(
    [make_policy("database", 90, categories=["database"])], default_days=400
)
DAY = parse_time("2024-01-01T00:00:00Z")
NOW = parse_time("2024-06-01T00:00:00Z")
BATCH = 5_000


def events(n: int) -> list[Event]:
    step = 86_000_000_000 // max(n, 1)
    return [
        Event(
            time=DAY + i * step,
            category="database",
            action="db.select",
            outcome="success",
            actor_name="alice" if i % 100 == 0 else f"app{i % 7}",
            target_host="db-1",
            details={"query": f"SELECT * FROM payroll WHERE id = {i}", "database": "hr"},
            raw=f"LOG:  statement: SELECT * FROM payroll WHERE id = {i}",
            id=uuid7(),
            ingested_at=NOW,
        )
        for i in range(n)
    ]


def build(root: Path, n: int) -> tuple[SQLiteStore, float]:
    root.mkdir(parents=True)
    keyring = open_keyring(root, {}, create=True)
    store = SQLiteStore(
        root / "events.db",
        signer=generate_signer("bench/0"),
        keyring=keyring,
        classify=POLICIES.classify,
    )
    start = time.perf_counter()
    data = events(n)
    for i in range(0, n, BATCH):
        store.append(data[i : i + BATCH])
    logins = [
        Event(time=DAY + i, category="authentication", action="ssh.login", id=uuid7())
        for i in range(1000)
    ]
    store.append(logins)
    return store, time.perf_counter() - start


def purge(store: SQLiteStore, *, hold: bool) -> tuple[float, float, float, int, int]:
    if hold:
        store.add_hold(
            new_hold(
                hold_id=uuid7(),
                query="user:alice",
                since=None,
                until=None,
                reason="bench",
                by="bench",
                now=NOW,
            )
        )
    start = time.perf_counter()
    holds = store.holds()
    plan = compute_plan(store.partitions(), POLICIES, holds, now=NOW)
    planned = time.perf_counter()
    result = apply_plan(store, plan, holds, by="bench")
    done = time.perf_counter()
    store.reclaim()
    reclaimed = time.perf_counter()
    return planned - start, done - planned, reclaimed - done, result.deleted, result.kept


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [100_000, 1_000_000]
    root = Path(tempfile.mkdtemp(prefix="kt-bench-purge-"))
    try:
        for n in sizes:
            for hold in (False, True):
                store, loaded = build(root / f"{n}-{hold}", n)
                size_mb = (root / f"{n}-{hold}" / "events.db").stat().st_size / 1e6
                plan_s, apply_s, reclaim_s, deleted, kept = purge(store, hold=hold)
                store.close()
                kind = "partial (1% held)" if hold else "whole partition  "
                print(
                    f"{n:>9,} events {kind}: plan {plan_s * 1000:7.1f} ms, apply "
                    f"{apply_s * 1000:9.1f} ms, then reclaim {reclaim_s * 1000:9.1f} ms"
                    f" ({deleted:,} removed, {kept:,} kept; db {size_mb:,.0f} MB, loaded in"
                    f" {loaded:.1f} s)"
                )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print("(SQLite, sealed partitions, real keyring; shared machine)")


if __name__ == "__main__":
    main()
