"""Search latency: first page of 50, newest first, over an existing store.

Runs the four searches the issue names, each many times with different values taken from the
store itself, through the same library call the CLI and API use, and prints p50/p95:

* one user over 7 days             user:NAME
* one source IP over 24 hours      ip:ADDRESS
* failed SSH logins over 24 hours  outcome:failure AND action:ssh.login
* a free-text word over 24 hours   WORD

    python bench/bench_search.py --data-dir bench/out/store-1m
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import time
from pathlib import Path

from keeptrail.netaddr import bytes_to_ip
from keeptrail.query import parse
from keeptrail.store import open_store

HOUR = 3_600_000_000
DAY = 24 * HOUR


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rnd = random.Random(args.seed)

    db = sqlite3.connect(f"file:{args.data_dir / 'events.db'}?mode=ro", uri=True)
    # Storage v2 (docs/storage.md): one table per partition; their clear columns, as one view.
    parts = [n for (n,) in db.execute("SELECT name FROM partitions WHERE state != 'purged'")]
    db.execute(
        "CREATE TEMP VIEW events AS "
        + " UNION ALL ".join(
            f'SELECT time, actor_name, source_ip, collector_source FROM "{n}"' for n in parts
        )
    )
    (total,) = db.execute("SELECT count(*) FROM events").fetchone()
    (newest,) = db.execute(
        "SELECT max(time) FROM events WHERE collector_source IN ('file', 'stdin')"
    ).fetchone()
    users = [
        u
        for (u,) in db.execute(
            "SELECT DISTINCT actor_name FROM events WHERE actor_name IS NOT NULL LIMIT 5000"
        )
    ]
    ips = [
        bytes_to_ip(ip)
        for (ip,) in db.execute(
            "SELECT source_ip FROM events WHERE source_ip IS NOT NULL AND time > ? LIMIT 20000",
            (newest - DAY,),
        )
    ]
    db.close()
    words = [
        "password",
        "invalid",
        "session",
        "disconnected",
        "COMMAND",
        "preauth",
        "nginx",
        "oracle",
    ]
    size = (args.data_dir / "events.db").stat().st_size
    print(f"store: {args.data_dir} — {total:,} events, {size / 1e9:.2f} GB")

    store = open_store(args.data_dir, readonly=True)
    cases = [
        ("one user, 7 days", lambda: f"user:{rnd.choice(users)}", 7 * DAY),
        ("one source IP, 24 h", lambda: f"ip:{rnd.choice(ips)}", DAY),
        ("failed ssh logins, 24 h", lambda: "outcome:failure AND action:ssh.login", DAY),
        ("free-text word, 24 h", lambda: rnd.choice(words), DAY),
    ]
    print(f"{'search':28s} {'p50 ms':>8s} {'p95 ms':>8s} {'max ms':>8s} {'avg hits':>9s}")
    for label, make, span in cases:
        timings: list[float] = []
        hits = 0
        for _ in range(args.runs):
            query = parse(make())
            since = newest - span - rnd.randrange(0, 3 * DAY)
            start = time.perf_counter()
            page = store.search(query, since=since, until=since + span, limit=50)
            timings.append((time.perf_counter() - start) * 1000)
            hits += len(page.events)
        print(
            f"{label:28s} {statistics.median(timings):8.1f} {percentile(timings, 95):8.1f} "
            f"{max(timings):8.1f} {hits / args.runs:9.1f}"
        )
    store.close()


if __name__ == "__main__":
    main()
