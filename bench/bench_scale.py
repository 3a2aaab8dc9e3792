"""How ingest and search grow from 1M to 10M stored events, on PostgreSQL and on SQLite.

Run (one backend per run, so that they do not share the CPU; the figures are then comparable):

    .venv/bin/python bench/bench_scale.py --backend postgres --events 10000000
    .venv/bin/python bench/bench_scale.py --backend sqlite --events 10000000

One store is filled by one writer, in time order, with the synthetic sshd/PAM/sudo events of
bench/bench_postgres.py (600 users, a long tail of addresses, 30 days per 10M events, sealed
with a real keyring: the default configuration). Only the ``append`` calls are timed, not the
generation of the events. The script prints:

* the ingest rate of every million appended (how ingest grows with the store);
* at each checkpoint (``--checkpoints``, default 1M, 3M and 10M): the store's size on disk,
  a burst of ``--burst`` events appended by one writer process and then by two at once (on
  PostgreSQL; SQLite has one writer by design), and the four searches of
  bench/bench_search.py, first page of 50, newest first, p50/p95 over ``--runs`` runs.

The density of events in time is the same at every size (a day holds a tenth of 10M events
whatever the store holds), so a search over 24 h looks at as many events at 1M as at 10M:
what grows is the store around it.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_postgres import (
    DAY,
    START,
    WORDS,
    drop_database,
    fresh_database,
    generate,
    percentile,
)

from keeptrail.event import Event
from keeptrail.ledger.keys import create_signer
from keeptrail.protect.kek import FileProvider
from keeptrail.query import parse
from keeptrail.store import open_store
from keeptrail.store.contract import Store
from keeptrail.store.postgres import open_postgres

MILLION = 1_000_000
SPAN_PER_EVENT = 30 * DAY // 10_000_000  # the density of a 10M-event month


def events(count: int, seed: int, offset: int) -> Iterator[list[Event]]:
    """``count`` events starting at position ``offset`` of the month (constant density)."""
    # bench_postgres.generate spreads n events over 30 days; scale n so the step is constant.
    for batch in generate(count, seed, offset):
        yield [_shift(e, offset, count) for e in batch]


def _shift(event: Event, offset: int, count: int) -> Event:
    """Re-time an event generated for ``count`` events onto the 10M-per-month grid."""
    step = 30 * DAY // max(count, 1)
    index = (event.time - START) // step - offset
    event.time = START + (offset + index) * SPAN_PER_EVENT
    event.ingested_at = event.time + 1_000_000
    return event


def timed_fill(store: Store, count: int, seed: int, offset: int) -> float:
    """Seconds spent in ``append`` for ``count`` events."""
    spent = 0.0
    for batch in events(count, seed, offset):
        began = time.perf_counter()
        store.append(batch)
        spent += time.perf_counter() - began
    return spent


def _burst_writer(url: str, data_dir: str, count: int, seed: int, offset: int, out: Any) -> None:
    store = open_postgres(url, data_dir=Path(data_dir))
    try:
        out.put(timed_fill(store, count, seed, offset))
    finally:
        store.close()


def pg_burst(url: str, data_dir: Path, count: int, processes: int, offset: int) -> float:
    """Events/s of ``processes`` writer processes appending ``count`` events in total."""
    queue: multiprocessing.Queue[float] = multiprocessing.Queue()
    share = count // processes
    procs = [
        multiprocessing.Process(
            target=_burst_writer,
            args=(url, str(data_dir), share, 900 + i + offset, offset + i * share, queue),
        )
        for i in range(processes)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    # Time spent appending (not starting Python): the slowest writer's, as they ran together.
    return share * processes / max(queue.get() for _ in procs)


def searches(store: Store, runs: int, stored: int) -> list[tuple[str, float, float, float]]:
    rnd = random.Random(11)
    newest = START + (stored - 1) * SPAN_PER_EVENT
    users = [f"user{i:03d}" for i in range(0, 40)]
    recent = store.search(None, since=newest - DAY, limit=2000).events
    ips = sorted({e.source_ip for e in recent if e.source_ip})
    cases: list[tuple[str, Callable[[], str], int]] = [
        ("one user, 7 days", lambda: f"user:{rnd.choice(users)}", 7 * DAY),
        ("one source IP, 24 h", lambda: f"ip:{rnd.choice(ips)}", DAY),
        ("failed ssh logins, 24 h", lambda: "outcome:failure AND action:ssh.login", DAY),
        ("free-text word, 24 h", lambda: rnd.choice(WORDS), DAY),
    ]
    out = []
    for label, make, span in cases:
        timings: list[float] = []
        hits = 0
        for _ in range(runs):
            query = parse(make())
            until = newest + 1 - rnd.randrange(0, DAY // 2)
            began = time.perf_counter()
            page = store.search(query, since=until - span, until=until, limit=50)
            timings.append((time.perf_counter() - began) * 1000)
            hits += len(page.events)
        out.append((label, statistics.median(timings), percentile(timings, 95), hits / runs))
    return out


def size_of(backend: str, url: str, sqlite_dir: Path) -> float:
    if backend == "postgres":
        with psycopg.connect(url, autocommit=True) as db:
            row = db.execute("SELECT pg_database_size(current_database())").fetchone()
        return float(row[0]) if row else 0.0
    return float(sum(p.stat().st_size for p in sqlite_dir.glob("events.db*")))


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--backend", choices=("postgres", "sqlite"), required=True)
    ap.add_argument("--events", type=int, default=10 * MILLION)
    ap.add_argument("--checkpoints", default="1000000,3000000,10000000")
    ap.add_argument("--burst", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--keep", action="store_true", help="keep the database / store afterwards")
    args = ap.parse_args()
    checkpoints = sorted({int(c) for c in args.checkpoints.split(",") if int(c) <= args.events})
    work = Path(tempfile.mkdtemp(prefix=f"kt-scale-{args.backend}-"))
    data_dir = work / "data"
    create_signer(data_dir, "keeptrail/bench/0")
    if args.backend == "postgres":
        FileProvider(data_dir).create(1, previous=None)  # the master key both writers share
    url = fresh_database("scale") if args.backend == "postgres" else ""
    store = open_postgres(url, data_dir=data_dir) if url else open_store(data_dir)
    print(f"{args.backend}: filling to {args.events:,} events; shared 2-core machine", flush=True)
    stored = 0
    began = time.perf_counter()
    try:
        while stored < args.events:
            target = min(args.events, (stored // MILLION + 1) * MILLION)
            nxt = [c for c in checkpoints if c > stored]
            if nxt and nxt[0] < target:
                target = nxt[0]
            count = target - stored
            spent = timed_fill(store, count, 7, stored)
            stored = target
            print(
                f"  {stored:>11,} stored: last {count:,} at {count / spent:,.0f} events/s"
                f" ({time.perf_counter() - began:,.0f} s since start)",
                flush=True,
            )
            if stored not in checkpoints:
                continue
            if url:
                with psycopg.connect(url, autocommit=True) as db:
                    db.execute("ANALYZE")  # what autovacuum does on its own schedule
            size = size_of(args.backend, url, data_dir)
            print(
                f"checkpoint {stored:,}: {size / 1e9:.2f} GB on disk, {size / stored:.0f} B/event"
            )
            if url:
                store.close()
                for processes in (1, 2):
                    rate = pg_burst(url, data_dir, args.burst, processes, stored)
                    stored += args.burst
                    print(
                        f"  burst of {args.burst:,}, {processes} writer process(es): {rate:,.0f} events/s"
                    )
                store = open_postgres(url, data_dir=data_dir)
            else:  # the same events as PostgreSQL's two bursts, by SQLite's one writer
                spent = timed_fill(store, args.burst, 900 + stored, stored)
                stored += args.burst
                half = args.burst // 2
                spent += sum(
                    timed_fill(store, half, 900 + i + stored, stored + i * half) for i in (0, 1)
                )
                stored += 2 * half
                rate = (args.burst + 2 * half) / spent
                print(f"  burst of {args.burst:,} twice, 1 writer: {rate:,.0f} events/s")
            print(f"  {'search (first page of 50)':28s} {'p50 ms':>8s} {'p95 ms':>8s} {'hits':>6s}")
            for label, p50, p95, hits in searches(store, args.runs, stored):
                print(f"  {label:28s} {p50:8.1f} {p95:8.1f} {hits:6.1f}", flush=True)
    finally:
        store.close()
        if args.keep:
            print(f"kept: {url or data_dir}")
        else:
            if url:
                drop_database(url)
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
