"""The ledger at scale: ingest with and without it, verification throughput, proof latency.

Run: .venv/bin/python bench/bench_ledger.py [events]   (default 1,000,000)

In one run, on the same pre-built events (batches of 5,000, as ingest uses):
  * "store without ledger": the pre-ledger append path (INSERT OR IGNORE of the same rows into
    an events table without leaf columns, one transaction per batch);
  * "store with ledger": SQLiteStore.append (rows + leaf hashes + tiles + frontier + signed
    checkpoint per batch);
  * "ledger work alone": canonical encoding + leaf hash + frontier + signing, no SQL;
  * verify_ledger over all stored events; inclusion proofs from stored tiles at that size.
"""

from __future__ import annotations

import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

from keeptrail.event import Event, uuid7
from keeptrail.ledger.keys import load_verifier
from keeptrail.ledger.merkle import Frontier
from keeptrail.ledger.note import generate_signer
from keeptrail.ledger.proof import inclusion_proof, verify_inclusion
from keeptrail.ledger.publish import Publisher
from keeptrail.ledger.tree import grow, sign_checkpoint
from keeptrail.ledger.verify import verify_ledger
from keeptrail.store import rows
from keeptrail.store.sqlite import SQLiteStore
from keeptrail.store.sqlite_schema import m001_events

BATCH = 5000
T0 = 1_700_000_000_000_000


def make_batches(n: int) -> list[list[Event]]:
    rng = random.Random(7)
    users = [f"user{i}" for i in range(200)]
    batches: list[list[Event]] = []
    for start in range(0, n, BATCH):
        now = T0 + start * 1000
        batch = []
        for i in range(start, min(n, start + BATCH)):
            user = rng.choice(users)
            ip = f"203.0.{rng.randrange(256)}.{rng.randrange(256)}"
            batch.append(
                Event(
                    time=T0 + i * 1000,
                    ingested_at=now,
                    category="authentication",
                    action="ssh.login",
                    outcome="failure",
                    reason="bad_password",
                    actor_name=user,
                    source_ip=ip,
                    source_port=40000 + i % 20000,
                    target_host="web-1",
                    target_system="ssh",
                    details={"preauth": False},
                    collector_host="bench",
                    collector_source="file",
                    collector_parser="sshd",
                    collector_file="/var/log/auth.log",
                    collector_offset=i * 96,
                    raw=f"Nov 14 22:13:20 web-1 sshd[{i}]: Failed password for {user} from {ip} "
                    f"port {40000 + i % 20000} ssh2",
                    id=uuid7(),
                )
            )
        batches.append(batch)
    return batches


def rate(label: str, n: int, seconds: float, unit: str = "events/s") -> float:
    print(f"{label:<44} {seconds:8.2f} s  {n / seconds:>12,.0f} {unit}")
    return n / seconds


def without_ledger(path: Path, batches: list[list[Event]]) -> float:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    m001_events(db)
    sql = (
        f"INSERT OR IGNORE INTO events ({', '.join(rows.COLUMNS)}) "
        f"VALUES ({', '.join('?' for _ in rows.COLUMNS)})"
    )
    began = time.perf_counter()
    for batch in batches:
        db.execute("BEGIN IMMEDIATE")
        db.executemany(sql, [rows.encode(e) for e in batch])
        db.execute("COMMIT")
    elapsed = time.perf_counter() - began
    db.close()
    return elapsed


def ledger_alone(batches: list[list[Event]]) -> float:
    signer = generate_signer("bench/ledger")
    frontier = Frontier()
    encoder = rows.CanonicalEncoder()
    encoded = [[rows.encode(e) for e in batch] for batch in batches]
    began = time.perf_counter()
    for batch in encoded:
        grow(frontier, (encoder(r) for r in batch))
        sign_checkpoint(signer, frontier)
    return time.perf_counter() - began


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    print(f"building {n:,} events …")
    batches = make_batches(n)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        plain = rate(
            "store without ledger (pre-ledger path)", n, without_ledger(base / "p.db", batches)
        )
        alone = ledger_alone(batches)
        rate("ledger work alone (encode+hash+tree+sign)", n, alone)
        store = SQLiteStore(base / "data" / "events.db", publisher=Publisher())
        began = time.perf_counter()
        for batch in batches:
            store.append(batch)
        with_ledger = rate("store with ledger (SQLiteStore.append)", n, time.perf_counter() - began)
        print(
            f"{'ingest slowdown from the ledger':<44} {plain / with_ledger:8.2f} x "
            f"({(1 / with_ledger - 1 / plain) * 1e6:.1f} µs/event)"
        )
        store.close()

        store = SQLiteStore(base / "data" / "events.db", readonly=True)
        verifier = load_verifier(base / "data")
        began = time.perf_counter()
        report = verify_ledger(store, verifier)
        elapsed = time.perf_counter() - began
        assert report.ok, report.findings[:3]
        rate(
            f"verify ({report.size:,} events, {report.checkpoints_checked} checkpoints)",
            report.size,
            elapsed,
        )

        size = report.size
        root = report.root
        picks = [random.randrange(size) for _ in range(200)]
        times = []
        for index in picks:
            t = time.perf_counter()
            path = inclusion_proof(index, size, store.ledger_node)
            times.append(time.perf_counter() - t)
            assert verify_inclusion(store.ledger_node(0, index), index, size, path, root)
        times.sort()
        print(
            f"{'inclusion proof at size ' + format(size, ','):<44} median "
            f"{statistics.median(times) * 1e3:.3f} ms, p99 {times[int(len(times) * 0.99)] * 1e3:.3f} ms"
            f", max {times[-1] * 1e3:.3f} ms"
        )
        store.close()


if __name__ == "__main__":
    main()
