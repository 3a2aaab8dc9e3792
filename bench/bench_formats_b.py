"""Parse throughput (events/s, one core) of the nginx access-log and PostgreSQL parsers.

Lines are real samples replicated to the requested count: the Wazuh/OSSEC combined-format
lines of ``tests/data`` for nginx, pgbadger's ``light.postgres.log`` (stderr, pgbench
statements) and the Filebeat csvlog sample for PostgreSQL. Each pass feeds every line to a
fresh assembler and flushes it; the best of three passes is printed.

    .venv/bin/python bench/bench_formats_b.py --lines 200000
"""

from __future__ import annotations

import argparse
import bz2
import re
import time
from collections.abc import Callable
from pathlib import Path

from keeptrail.parsers import mysql, postgres, web_access
from keeptrail.parsers.base import RecordAssembler, StreamContext

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"


def web_lines() -> list[str]:
    out = []
    for name in (
        "wazuh/ruleset/testing/tests/web_appsec.ini",
        "ossec/contrib/ossec-testing/tests/web_rules.ini",
    ):
        for raw in (DATA / name).read_text().splitlines():
            m = re.fullmatch(r"log \d+ (?:pass|fail) = (.*)", raw.rstrip())
            if m and '] "' in m[1] and not m[1].startswith("Jan"):
                out.append(m[1])
    return out


def pg_stderr_lines() -> list[str]:
    return (
        bz2.decompress((DATA / "pgbadger/t/fixtures/light.postgres.log.bz2").read_bytes())
        .decode()
        .splitlines()
    )


def pg_csv_lines() -> list[str]:
    return (
        (
            DATA
            / "beats/filebeat/module/postgresql/log/test/postgresql-11-connection-disconnection.csv.log"
        )
        .read_text()
        .splitlines()
    )


def mysql_lines() -> list[str]:
    return (
        (DATA / "percona-toolkit/t/lib/samples/genlogs/genlog005.txt").read_text().splitlines()[3:]
    )


def measure(
    make: Callable[[], RecordAssembler], sample: list[str], count: int
) -> tuple[float, int]:
    lines = (sample * (count // len(sample) + 1))[:count]
    best = float("inf")
    events = 0
    for _ in range(3):
        a = make()
        start = time.perf_counter()
        n = 0
        offset = 0
        for line in lines:
            n += len(a.feed(line, offset))
            offset += len(line) + 1
        n += len(a.flush())
        best = min(best, time.perf_counter() - start)
        events = n
    return best, events


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--lines", type=int, default=200_000)
    args = ap.parse_args()
    ctx = StreamContext(reference_us=1_700_000_000_000_000)
    cases: list[tuple[str, Callable[[], RecordAssembler], list[str]]] = [
        ("nginx combined", lambda: web_access.assembler(ctx), web_lines()),
        ("postgres stderr (auto prefix)", lambda: postgres.assembler(ctx), pg_stderr_lines()),
        (
            "postgres stderr (configured prefix)",
            lambda: postgres.assembler(
                ctx, postgres.PostgresConfig("%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ")
            ),
            pg_stderr_lines(),
        ),
        ("postgres csvlog", lambda: postgres.assembler(ctx), pg_csv_lines()),
        ("mysql general log", lambda: mysql.assembler(ctx), mysql_lines()),
    ]
    print(
        f"{'format':38} {'lines':>9} {'events':>9} {'seconds':>8} {'lines/s':>10} {'events/s':>10}"
    )
    for name, make, sample in cases:
        seconds, events = measure(make, sample, args.lines)
        print(
            f"{name:38} {args.lines:>9} {events:>9} {seconds:>8.3f} {args.lines / seconds:>10,.0f} {events / seconds:>10,.0f}"
        )


if __name__ == "__main__":
    main()
