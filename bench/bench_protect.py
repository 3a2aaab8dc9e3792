"""Encryption at rest: ingest with and without sealing, search with decryption, purge time.

Everything runs in this one process against real SQLite files, so the figures compare like with
like on the same (shared) machine:

* ingest events/s through the pipeline (parse → store) into a plaintext store (no keyring) and
  into a sealed one (AES-256-GCM per event, one data key per partition), same log, same run;
* search latency, first page of 50 (decrypting every returned event), for the usual paths:
  newest events, an actor, an address, an action over a day, and free text (checked after
  decryption, bounded scan);
* purge time of one partition of N events (``--purge 100000 1000000``): key destruction, then
  ``DROP TABLE``; the events are synthetic and stored straight through ``append``.

    python bench/gen_auth_log.py --lines 200000 --out bench/out/auth-200k.log
    python bench/bench_protect.py bench/out/auth-200k.log --purge 100000 1000000
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from keeptrail.event import Event, uuid7_for
from keeptrail.ingest import Ingestor
from keeptrail.ledger.note import generate_signer
from keeptrail.ledger.publish import Publisher
from keeptrail.ledger.verify import verify_ledger
from keeptrail.protect.keyring import open_keyring
from keeptrail.query.parse import parse
from keeptrail.store.sqlite import SQLiteStore

_DAY0 = 1_700_006_400_000_000  # 2023-11-15T00:00:00Z


_SIGNER = generate_signer("keeptrail/bench/0")


def _store(data: Path, sealed: bool) -> SQLiteStore:
    keyring = open_keyring(data, {}) if sealed else None
    return SQLiteStore(
        data / "events.db",
        signer=_SIGNER,
        publisher=Publisher(),
        keyring=keyring,
        close_keyring=True,
    )


def ingest(log: Path, data: Path, sealed: bool) -> tuple[float, int]:
    """Seconds and events stored for one ingest of ``log`` into a fresh store."""
    store = _store(data, sealed)
    try:
        start = time.perf_counter()
        Ingestor(store).ingest_file(log)
        elapsed = time.perf_counter() - start
        return elapsed, store.count()
    finally:
        store.close()


def search_latency(data: Path, sealed: bool, repeat: int = 5) -> list[tuple[str, float, int]]:
    """Median milliseconds (and result count) for a first page of each search path."""
    store = _store(data, sealed)
    newest = store.search(None, limit=1).events[0]
    day = 86_400_000_000
    queries = [
        ("newest 50", None, None),
        ("user:root", "user:root", None),
        ("ip:203.0.113.0/24", "ip:203.0.113.0/24", None),
        ("action:ssh.login over 1 day", "action:ssh.login", newest.time - day),
        ('free text "session opened"', '"session opened"', None),
        ("details.command:*passwd*", "details.command:*passwd*", None),
    ]
    out = []
    try:
        for label, text, since in queries:
            tree = parse(text) if text else None
            times, n = [], 0
            for _ in range(repeat):
                start = time.perf_counter()
                page = store.search(tree, since=since, limit=50)
                times.append(time.perf_counter() - start)
                n = len(page.events)
            out.append((label, statistics.median(times) * 1000, n))
    finally:
        store.close()
    return out


def verify_rate(data: Path, sealed: bool) -> tuple[float, int, bool]:
    """Seconds, leaves and verdict of a full ``verify`` (decrypt, hash, clear-column check)."""
    store = _store(data, sealed)
    try:
        start = time.perf_counter()
        report = verify_ledger(store, _SIGNER.verifier())
        return time.perf_counter() - start, report.size, report.ok
    finally:
        store.close()


def purge_time(n: int, root: Path) -> tuple[float, float, float, float]:
    """Seconds to fill one partition of ``n`` events, to destroy its key, to purge it (key
    destruction + detaching the table), and to reclaim its pages afterwards."""
    data = root / f"purge-{n}"
    store = _store(data, True)
    try:
        start = time.perf_counter()
        batch = 5000
        for base in range(0, n, batch):
            store.append(
                [
                    Event(
                        time=_DAY0 + (base + i) * 1000,
                        category="authentication",
                        action="ssh.login",
                        outcome="failure",
                        actor_name=f"user{(base + i) % 977}",
                        source_ip=f"198.51.{(base + i) % 256}.{(base + i) % 251}",
                        target_host="web-1",
                        details={"command": f"/usr/bin/something --n {base + i}"},
                        raw=f"Nov 15 00:00:00 web-1 sshd[1]: Failed password for user{base + i}",
                        id=uuid7_for(_DAY0 // 1000, f"bench-{n}-{base + i}".encode()),
                    )
                    for i in range(min(batch, n - base))
                ]
            )
        fill = time.perf_counter() - start
        (name,) = [p.name for p in store.partitions() if p.events == n]
        keyring = store._keys.keyring
        assert keyring is not None
        destroy = keyring.destroy
        shred = [0.0]

        def timed_destroy(partition: str, *, reason: str) -> None:
            began = time.perf_counter()
            destroy(partition, reason=reason)
            shred[0] = time.perf_counter() - began

        keyring.destroy = timed_destroy  # type: ignore[method-assign]
        start = time.perf_counter()
        result = store.purge_partition(name, holds=[], purge_event_id="bench")
        purge = time.perf_counter() - start
        assert result.state == "purged"
        assert result.deleted == n
        store.close()
        store = _store(data, True)  # reclaim as `keeptrail retention reclaim`: a new process
        start = time.perf_counter()
        freed = store.reclaim()
        reclaim = time.perf_counter() - start
        assert freed.dropped == [name]
        return fill, shred[0], purge, reclaim
    finally:
        store.close()
        shutil.rmtree(data, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("log", type=Path)
    ap.add_argument("--purge", type=int, nargs="*", default=[100_000])
    ap.add_argument("--rounds", type=int, default=2, help="alternating ingest rounds per mode")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="kt-bench-protect-"))
    try:
        rates: dict[bool, list[float]] = {False: [], True: []}
        for r in range(args.rounds):
            for sealed in (False, True):
                data = root / f"{'sealed' if sealed else 'plain'}-{r}"
                elapsed, n = ingest(args.log, data, sealed)
                rates[sealed].append(n / elapsed)
                if r < args.rounds - 1:
                    shutil.rmtree(data)
        for sealed in (False, True):
            label = "encryption on " if sealed else "encryption off"
            best = max(rates[sealed])
            print(f"ingest, {label}: {best:,.0f} events/s (best of {args.rounds}; shared machine)")
        last = args.rounds - 1
        for sealed in (False, True):
            label = "sealed" if sealed else "plain"
            for q, ms, n in search_latency(root / f"{label}-{last}", sealed):
                print(f"search ({label}) {q}: {ms:.1f} ms for {n} events")
        for sealed in (False, True):
            label = "sealed" if sealed else "plain"
            seconds, size, ok = verify_rate(root / f"{label}-{last}", sealed)
            print(
                f"verify ({label}): {size:,} leaves in {seconds:.1f}s, {size / seconds:,.0f}/s,"
                f" {'intact' if ok else 'DAMAGED'}"
            )
        for n in args.purge:
            fill, shred, purge, reclaim = purge_time(n, root)
            print(
                f"purge of one partition of {n:,} events: {purge * 1000:.0f} ms (key"
                f" destruction {shred * 1000:.0f} ms + detaching the table); reclaim afterwards"
                f" (DROP TABLE freeing pages): {reclaim * 1000:.0f} ms (filling it took"
                f" {fill:.0f}s; shared machine)"
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
