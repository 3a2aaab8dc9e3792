"""Parser throughput alone: framing, detection and parsing of every line, no store, no ids.

``bench_ingest.py`` times the whole pipeline, where the store's transaction and hashing costs
hide a parser change; this script times only what ``keeptrail ingest`` does per line before an
event leaves the parsers (the format is sniffed from the first line as ingest does). It prints
CPU time (``process_time``, less disturbed than wall time by other processes on a shared
machine) and wall time, best of ``--repeat`` runs.

    python bench/gen_auth_log.py --lines 200000 --out bench/out/auth-200k.log
    python bench/bench_parsers.py bench/out/auth-200k.log --repeat 5

To compare two trees, run the same command with ``PYTHONPATH=<other tree>/src``.
``--pg-continuation N`` instead times one PostgreSQL record of N 1 KB continuation lines (the
cost of a long multi-line statement; it was quadratic before the lines were joined once):

    python bench/bench_parsers.py --pg-continuation 10000
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC
from pathlib import Path

from keeptrail.parsers import postgres
from keeptrail.parsers.base import StreamContext
from keeptrail.parsers.formats import choose_format


def parse_all(lines: list[str], fmt_name: str) -> tuple[int, int]:
    """Events and unparsed events produced from ``lines``."""
    fmt = choose_format(fmt_name, lines[0] if lines else None)
    assembler = fmt.assembler(StreamContext(reference_us=1_700_000_000_000_000, tz=UTC))
    events = unparsed = 0
    offset = 0
    for line in lines:
        for event in assembler.feed(line, offset):
            events += 1
            unparsed += event.category == "unparsed"
        offset += len(line) + 1
    for event in assembler.flush():
        events += 1
        unparsed += event.category == "unparsed"
    return events, unparsed


def pg_continuation(n: int) -> float:
    """Seconds to assemble one stderr record of ``n`` continuation lines of 1 KB."""
    a = postgres.assembler(StreamContext(reference_us=0))
    start = time.perf_counter()
    a.feed("2024-01-01 00:00:00.000 UTC [7] u@d LOG:  statement: SELECT 1", 0)
    line = "  , col -- " + "x" * 1000
    for i in range(n):
        a.feed(line, i + 1)
    a.flush()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("log", type=Path, nargs="?")
    ap.add_argument("--format", default="auto")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--pg-continuation", type=int, metavar="N")
    args = ap.parse_args()
    if args.pg_continuation is not None:
        seconds = pg_continuation(args.pg_continuation)
        print(f"postgres: one record of {args.pg_continuation:,} 1 KB lines in {seconds:.3f}s")
        return
    if args.log is None:
        ap.error("a log file is required (or --pg-continuation N)")
    lines = args.log.read_text(encoding="utf-8", errors="surrogateescape").splitlines()
    best_cpu = best_wall = float("inf")
    events = unparsed = 0
    for _ in range(args.repeat):
        cpu0, wall0 = time.process_time(), time.perf_counter()
        events, unparsed = parse_all(lines, args.format)
        best_cpu = min(best_cpu, time.process_time() - cpu0)
        best_wall = min(best_wall, time.perf_counter() - wall0)
    print(f"input: {args.log} — {len(lines):,} lines → {events:,} events ({unparsed:,} unparsed)")
    print(
        f"parse, best of {args.repeat}: CPU {best_cpu:.2f}s ({len(lines) / best_cpu:,.0f} lines/s), "
        f"wall {best_wall:.2f}s ({len(lines) / best_wall:,.0f} lines/s)"
    )


if __name__ == "__main__":
    main()
