"""Per-event cost and size of compressing canonical events with a preset dictionary.

Ingests a log (``bench/gen_auth_log.py`` output, or any sample) into a plaintext scratch store,
takes its events' canonical bytes, and times, per event, the constructions the store could
use — a fresh ``zlib.compressobj(level, DEFLATED, -15, memLevel, strategy, zdict)`` against a
primed compressor's ``copy()``, levels 1 and 6 — plus plain zlib without a dictionary, and
``keeptrail.store.compact.pack``/``unpack`` as shipped. Best of ``--repeat`` runs (shared
machine: other jobs disturb single runs).

    python bench/gen_auth_log.py --lines 200000 --out bench/out/auth-200k.log
    head -5000 bench/out/auth-200k.log > bench/out/auth-5k.log
    python bench/bench_compact.py bench/out/auth-5k.log
"""

from __future__ import annotations

import argparse
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path

from keeptrail.event import canonical_bytes
from keeptrail.ingest import Ingestor
from keeptrail.ledger.note import generate_signer
from keeptrail.ledger.publish import Publisher
from keeptrail.store.compact import ZDICT_V1_BYTES, pack, unpack
from keeptrail.store.sqlite import SQLiteStore


def canonical_events(log: Path, limit: int) -> list[bytes]:
    """Canonical bytes of the first ``limit`` events ``log`` parses into."""
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(
            Path(tmp) / "events.db", signer=generate_signer("bench/0"), publisher=Publisher()
        )
        try:
            Ingestor(store).ingest_file(log)
            return [canonical_bytes(e) for _, e in store.events_after(0, limit)]
        finally:
            store.close()


def best_us(fn: Callable[[], object], n: int, repeat: int) -> float:
    """Best-of-``repeat`` microseconds per event of ``fn`` (which handles ``n`` events)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times) / n * 1e6


def main() -> None:
    """Print µs/event to compress and decompress, and bytes/event, per construction."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("log", type=Path)
    parser.add_argument("--limit", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    events = canonical_events(args.log, args.limit)
    n = len(events)
    zd = ZDICT_V1_BYTES
    print(f"{n} events, canonical {sum(map(len, events)) / n:.0f} B/event")
    print(f"{'construction':<34} {'compress':>10} {'decompress':>11} {'B/event':>8}")
    for level in (1, 6):

        def fresh(level: int = level) -> list[bytes]:
            out = []
            for e in events:
                c = zlib.compressobj(level, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY, zd)
                out.append(c.compress(e) + c.flush())
            return out

        primed = zlib.compressobj(level, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY, zd)

        def copied(primed: zlib._Compress = primed) -> list[bytes]:
            out = []
            for e in events:
                c = primed.copy()
                out.append(c.compress(e) + c.flush())
            return out

        packed = copied()

        def inflate(packed: list[bytes] = packed) -> None:
            for p in packed:
                zlib.decompressobj(-15, zd).decompress(p)

        size = sum(map(len, packed)) / n
        t_in = best_us(inflate, n, args.repeat)
        for name, fn in ((f"compressobj(zdict) level {level}", fresh), (f"primed.copy() level {level}", copied)):  # fmt: skip
            print(f"{name:<34} {best_us(fn, n, args.repeat):8.1f}µs {t_in:9.1f}µs {size:8.1f}")
    plain = [zlib.compress(e, 6) for e in events]
    t_plain = best_us(lambda: [zlib.compress(e, 6) for e in events], n, args.repeat)
    t_plain_in = best_us(lambda: [zlib.decompress(p) for p in plain], n, args.repeat)
    print(
        f"{'zlib.compress level 6, no dict':<34} {t_plain:8.1f}µs {t_plain_in:9.1f}µs"
        f" {sum(map(len, plain)) / n:8.1f}"
    )
    stored = [pack(e) for e in events]
    assert [unpack(s) for s in stored] == events
    t_pack = best_us(lambda: [pack(e) for e in events], n, args.repeat)
    t_unpack = best_us(lambda: [unpack(s) for s in stored], n, args.repeat)
    print(
        f"{'compact.pack / unpack (shipped)':<34} {t_pack:8.1f}µs {t_unpack:9.1f}µs"
        f" {sum(map(len, stored)) / n:8.1f}"
    )


if __name__ == "__main__":
    main()
