"""PostgreSQL backend: ingest with one and two writer processes, search latency against SQLite.

Run: .venv/bin/python bench/bench_postgres.py --events 1000000 [--url postgresql://...]

1. **Ingest.** ``--ingest-events`` synthetic events (sshd/sudo-like, 600 users, 30 days) are
   appended in batches of 5,000 through ``PostgresStore.append`` — the exact path a server's
   ingest API takes: COPY into the queue, commit, integration (leaves, partitions, tree,
   signed checkpoint), return — first by one process, then by two processes at once into a
   fresh database (same run). Each process runs its integrator loop; one of them integrates.
2. **Search.** The same ``--events`` events go into a fresh PostgreSQL database and a fresh
   SQLite store (both sealed with a real keyring, the default configuration), then the four
   searches of bench/bench_search.py run on both (first page of 50, newest first, p50/p95):
   one user over 7 days, one source IP over 24 h, failed SSH logins over 24 h, a free-text
   word over 24 h (a residual search: decrypted and filtered after SQL).

Figures are from a shared 2-core machine (other work runs beside it); PostgreSQL 15 runs on the
same machine with its default configuration.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import random
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg

from keeptrail.event import Event, uuid7
from keeptrail.ledger.keys import create_signer
from keeptrail.protect.kek import FileProvider
from keeptrail.query import parse
from keeptrail.store import open_store
from keeptrail.store.contract import Store
from keeptrail.store.postgres import open_postgres

ADMIN = "postgresql://keeptrail:keeptrail@127.0.0.1:5432/postgres"
HOUR = 3_600_000_000
DAY = 24 * HOUR
START = 1_735_689_600_000_000  # 2025-01-01
SPAN_DAYS = 30
BATCH = 5_000
WORDS = ["password", "invalid", "session", "disconnected", "COMMAND", "preauth"]


def generate(n: int, seed: int, offset: int = 0) -> Iterator[list[Event]]:
    """``n`` events in batches, in time order over 30 days (as a log would arrive)."""
    rnd = random.Random(seed)
    users = [f"user{i:03d}" for i in range(600)]
    step = SPAN_DAYS * DAY // max(n, 1)
    batch: list[Event] = []
    for i in range(n):
        t = START + (offset + i) * step
        user = users[int(rnd.paretovariate(1.2)) % len(users)]
        k = int(rnd.paretovariate(0.8)) % 20_000  # a few busy addresses, a long tail
        ip = f"10.{k // 64516}.{k // 254 % 254}.{k % 254 + 1}"
        kind = rnd.random()
        if kind < 0.5:
            fail = rnd.random() < 0.6
            batch.append(
                Event(
                    time=t,
                    category="authentication",
                    action="ssh.login",
                    outcome="failure" if fail else "success",
                    reason="bad_password" if fail else None,
                    actor_name=user,
                    source_ip=ip,
                    source_port=rnd.randrange(1024, 65535),
                    target_host=f"web-{rnd.randrange(20)}",
                    target_system="ssh",
                    raw=f"sshd[{i % 30000}]: {'Failed' if fail else 'Accepted'} password for"
                    f" {'invalid user ' if fail and rnd.random() < 0.2 else ''}{user} from {ip}"
                    f" port 22 ssh2",
                    id=uuid7(),
                    ingested_at=t + 1_000_000,
                    collector_source="file",
                )
            )
        elif kind < 0.8:
            batch.append(
                Event(
                    time=t,
                    category="session",
                    action="session.open",
                    outcome="success",
                    actor_name=user,
                    target_host=f"web-{rnd.randrange(20)}",
                    raw=f"pam_unix(sshd:session): session opened for user {user}",
                    id=uuid7(),
                    ingested_at=t + 1_000_000,
                    collector_source="file",
                )
            )
        else:
            batch.append(
                Event(
                    time=t,
                    category="privilege",
                    action="sudo.command",
                    outcome="success",
                    actor_name=user,
                    target_host=f"db-{rnd.randrange(5)}",
                    details={"command": f"/usr/bin/systemctl restart svc{rnd.randrange(50)}"},
                    raw=f"sudo: {user} : TTY=pts/0 ; PWD=/home/{user} ; USER=root ;"
                    f" COMMAND=/usr/bin/systemctl restart svc{rnd.randrange(50)}",
                    id=uuid7(),
                    ingested_at=t + 1_000_000,
                    collector_source="file",
                )
            )
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def fresh_database(tag: str) -> str:
    name = f"kt_bench_{tag}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(ADMIN, autocommit=True) as db:
        db.execute(f'CREATE DATABASE "{name}"')
    return ADMIN.rsplit("/", 1)[0] + f"/{name}"


def drop_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(ADMIN, autocommit=True) as db:
        db.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        db.execute(f'DROP DATABASE IF EXISTS "{name}"')


def fill(store: Store, n: int, seed: int, offset: int = 0) -> float:
    began = time.perf_counter()
    for batch in generate(n, seed, offset):
        store.append(batch)
    return time.perf_counter() - began


def _writer(url: str, data_dir: str, n: int, seed: int, offset: int, out: Any) -> None:
    store = open_postgres(url, data_dir=Path(data_dir))
    try:
        out.put(fill(store, n, seed, offset))
    finally:
        store.close()


def ingest(url: str, data_dir: Path, n: int, processes: int) -> float:
    """Events per second with ``processes`` writers appending ``n`` events in total."""
    queue: multiprocessing.Queue[float] = multiprocessing.Queue()
    share = n // processes
    procs = [
        multiprocessing.Process(
            target=_writer, args=(url, str(data_dir), share, 100 + i, i * share, queue)
        )
        for i in range(processes)
    ]
    began = time.perf_counter()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - began
    return share * processes / elapsed


def http_ingest(url: str, data_dir: Path, n: int, servers: int) -> float:
    """Events per second through ``servers`` real ``keeptrail serve --store`` processes.

    Two client threads per server POST pre-encoded batches of 1,000 (what agents send).
    """
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415
    import threading  # noqa: PLC0415

    import httpx  # noqa: PLC0415
    import orjson  # noqa: PLC0415

    from keeptrail.event import to_document  # noqa: PLC0415

    dirs = [data_dir.parent / f"server{i}" for i in range(servers)]
    env = {**os.environ, "KEEPTRAIL_STORE": url}
    procs: list[subprocess.Popen[bytes]] = []
    bases: list[tuple[str, str]] = []
    try:
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)
            shutil.copytree(data_dir / "keys", d / "keys")
            token = subprocess.run(
                [sys.executable, "-m", "keeptrail", "tokens", "create", "--name", f"bench-{d.name}",
                 "--role", "ingest", "--data-dir", str(d)],
                capture_output=True, text=True, check=True, env=env,
            ).stdout.strip()  # fmt: skip
            port = _free_port()
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "keeptrail",
                        "serve",
                        "--listen",
                        f"127.0.0.1:{port}",
                        "--data-dir",
                        str(d),
                    ],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            bases.append((f"http://127.0.0.1:{port}", token))
        for base, _ in bases:
            _wait_ready(base)
        bodies = [
            orjson.dumps([to_document(e) for e in chunk[i : i + 1000]])
            for chunk in generate(n, 300 + servers)
            for i in range(0, len(chunk), 1000)
        ]
        lanes = [bases[i % len(bases)] for i in range(2 * len(bases))]
        errors: list[BaseException] = []

        def lane(k: int) -> None:
            base, token = lanes[k]
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            with httpx.Client(timeout=120) as client:
                for body in bodies[k :: len(lanes)]:
                    try:
                        client.post(f"{base}/api/v1/events", content=body, headers=headers)
                    except httpx.HTTPError as exc:
                        errors.append(exc)

        threads = [threading.Thread(target=lane, args=(k,)) for k in range(len(lanes))]
        began = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - began
        if errors:
            raise RuntimeError(f"{len(errors)} batches failed: {errors[0]}")
        return n / elapsed
    finally:
        for p in procs:
            p.terminate()
            p.wait(30)


def integrator_rate(url: str, data_dir: Path, n: int) -> tuple[float, float]:
    """(enqueue events/s, integrate events/s): the appenders' and the sequencer's own rates.

    The queue is filled while another session holds the integrator lock (each append times
    out after queueing, which is what a stalled integrator looks like), then one integrator
    drains it alone: its rate is the ceiling of one ledger, whatever the number of servers.
    """
    from keeptrail.errors import UserError  # noqa: PLC0415
    from keeptrail.ledger.keys import load_signer  # noqa: PLC0415
    from keeptrail.store.integrator import integrate_once, try_lock  # noqa: PLC0415
    from keeptrail.store.postgres import PostgresStore  # noqa: PLC0415

    signer = load_signer(data_dir)
    assert signer is not None
    open_postgres(url, data_dir=data_dir).close()  # schema, master key
    holder = psycopg.connect(url, autocommit=True)
    assert try_lock(holder)
    store = PostgresStore(url, data_dir=data_dir, signer=signer, integrator=False,
                          wait_timeout=0.0)  # fmt: skip
    began = time.perf_counter()
    for batch in generate(n, 5):
        # Queued, not integrated: the expected timeout while the lock is held elsewhere.
        with contextlib.suppress(UserError):
            store.append(batch)
    enqueue = n / (time.perf_counter() - began)
    store.close()
    holder.close()
    with psycopg.connect(url, autocommit=True) as db:
        assert try_lock(db)
        began = time.perf_counter()
        done = 0
        while (step := integrate_once(db, signer, limit=BATCH)) is not None:
            done += step.count
        integrate = done / (time.perf_counter() - began)
    return enqueue, integrate


def _free_port() -> int:
    import socket  # noqa: PLC0415

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(base: str) -> None:
    import httpx  # noqa: PLC0415

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{base} did not become ready")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def searches(store: Store, runs: int, seed: int, n: int) -> list[tuple[str, float, float, float]]:
    rnd = random.Random(seed)
    newest = START + (n - 1) * (SPAN_DAYS * DAY // n)
    users = [f"user{i:03d}" for i in range(0, 40)]
    # Addresses that occur in the searched days (as bench_search.py samples them from the store).
    recent = store.search(None, since=newest - 4 * DAY, limit=2000).events
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
            since = newest - span - rnd.randrange(0, 3 * DAY)
            began = time.perf_counter()
            page = store.search(query, since=since, until=since + span, limit=50)
            timings.append((time.perf_counter() - began) * 1000)
            hits += len(page.events)
        out.append((label, statistics.median(timings), percentile(timings, 95), hits / runs))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--events", type=int, default=1_000_000, help="events for the search test")
    ap.add_argument("--ingest-events", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--keep", action="store_true", help="keep the databases and the SQLite store")
    ap.add_argument("--skip-ingest", action="store_true")
    ap.add_argument("--skip-search", action="store_true")
    ap.add_argument("--http-events", type=int, default=0, help="also ingest over HTTP")
    ap.add_argument("--integrator-events", type=int, default=0, help="measure the sequencer")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kt-bench-pg-"))
    data_dir = work / "data"
    create_signer(data_dir, "keeptrail/bench/0")
    FileProvider(data_dir).create(1, previous=None)  # the master key every server shares
    print("shared 2-core machine; PostgreSQL 15 on the same host, default settings")
    if not args.skip_ingest:
        for processes in (1, 2):
            url = fresh_database(f"ingest{processes}")
            try:
                rate = ingest(url, data_dir, args.ingest_events, processes)
                print(
                    f"ingest, {processes} writer process(es): {rate:,.0f} events/s"
                    f" ({args.ingest_events:,} events, batches of {BATCH:,}, sealed)"
                )
            finally:
                if not args.keep:
                    drop_database(url)
    if args.integrator_events:
        url = fresh_database("integrator")
        try:
            enqueue, integrate = integrator_rate(url, data_dir, args.integrator_events)
            print(
                f"one appender, queue only: {enqueue:,.0f} events/s; one integrator alone:"
                f" {integrate:,.0f} events/s ({args.integrator_events:,} events)"
            )
        finally:
            if not args.keep:
                drop_database(url)
    for servers in (1, 2) if args.http_events else ():
        url = fresh_database(f"http{servers}")
        try:
            rate = http_ingest(url, data_dir, args.http_events, servers)
            print(
                f"ingest over HTTP, {servers} keeptrail serve process(es): {rate:,.0f} events/s"
                f" ({args.http_events:,} events, batches of 1,000, 2 clients per server)"
            )
        finally:
            if not args.keep:
                drop_database(url)
    if args.skip_search:
        return
    url = fresh_database("search")
    sqlite_dir = work / "sqlite"
    (sqlite_dir / "keys").mkdir(parents=True, mode=0o700)
    shutil.copy2(data_dir / "keys" / "ledger.key", sqlite_dir / "keys" / "ledger.key")
    try:
        pg = open_postgres(url, data_dir=data_dir)
        took = fill(pg, args.events, 7)
        print(f"postgres: {args.events:,} events loaded in {took:.0f}s")
        lite = open_store(sqlite_dir)
        took = fill(lite, args.events, 7)
        print(f"sqlite:   {args.events:,} events loaded in {took:.0f}s")
        with psycopg.connect(url, autocommit=True) as db:
            db.execute("VACUUM ANALYZE")  # autovacuum would do it; do not time its schedule
            size = db.execute("SELECT pg_database_size(current_database())").fetchone()
        print(
            f"sizes: postgres {size[0] / 1e9 if size else 0:.2f} GB, sqlite"
            f" {(sqlite_dir / 'events.db').stat().st_size / 1e9:.2f} GB"
        )
        print(
            f"{'search (first page of 50)':28s} {'backend':9s} {'p50 ms':>8s} {'p95 ms':>8s}"
            f" {'avg hits':>9s}"
        )
        for name, store in (("postgres", pg), ("sqlite", lite)):
            for label, p50, p95, hits in searches(store, args.runs, 11, args.events):
                print(f"{label:28s} {name:9s} {p50:8.1f} {p95:8.1f} {hits:9.1f}")
        pg.close()
        lite.close()
    finally:
        if not args.keep:
            drop_database(url)
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept: {url} and {work}")


if __name__ == "__main__":
    main()
