"""Ingest throughput end to end (read, parse, normalize, store), with peers in the same run.

Runs ``keeptrail ingest`` as a separate process (as a user would) so its peak resident memory
can be read, optionally into a store pre-filled with many events, then runs the peers a user
would otherwise reach for on the same file: ``fail2ban-regex FILE sshd`` (Debian's fail2ban)
and ``grep -c``.

    python bench/gen_auth_log.py --lines 1000000 --out bench/out/auth-1m.log
    python bench/bench_ingest.py bench/out/auth-1m.log
    python bench/bench_ingest.py bench/out/auth-1m.log --prefill-store bench/out/store-10m

The pre-filled store is reused as given (copy it first if you want to keep it pristine).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_timed(cmd: list[str], **kwargs: object) -> tuple[float, int, str]:
    """Wall time, peak RSS of the child (KiB) and stdout of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if proc.returncode != 0:
        sys.exit(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return elapsed, max(peak, before), proc.stdout


def count_lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("log", type=Path)
    ap.add_argument("--prefill-store", type=Path, help="data directory already holding events")
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument(
        "--ingest-arg",
        action="append",
        default=[],
        help="extra argument for keeptrail ingest (repeatable), e.g. --ingest-arg=--no-detect",
    )
    args = ap.parse_args()

    lines = count_lines(args.log)
    raw_bytes = args.log.stat().st_size
    data_dir = args.prefill_store or Path(tempfile.mkdtemp(prefix="kt-bench-"))
    db = data_dir / "events.db"
    before_events = 0
    if db.exists():
        with sqlite3.connect(db) as c:
            before_events = c.execute("SELECT count(*) FROM leaves").fetchone()[0]
    size_before = db.stat().st_size if db.exists() else 0

    env = {**os.environ, "KEEPTRAIL_DATA_DIR": str(data_dir)}
    kt = [sys.executable, "-m", "keeptrail", "ingest", "-q", "--timezone", "UTC", *args.ingest_arg]
    kt.append(str(args.log))
    elapsed, peak_kib, _ = run_timed(kt, env=env)
    with sqlite3.connect(db) as c:
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        after_events = c.execute("SELECT count(*) FROM leaves").fetchone()[0]
    added = after_events - before_events
    size_after = db.stat().st_size
    print(
        f"input: {args.log} — {lines:,} lines, {raw_bytes / 1e6:.1f} MB, {raw_bytes / lines:.0f} B/line"
    )
    print(f"store before: {before_events:,} events")
    print(
        f"keeptrail ingest: {elapsed:.1f}s, {added / elapsed:,.0f} events/s, peak RSS {peak_kib / 1024:.0f} MiB"
    )
    print(
        f"stored: {(size_after - size_before) / added:.0f} B/event (raw {raw_bytes / lines:.0f} B/line), "
        f"ratio {(size_after - size_before) / raw_bytes:.2f}x"
    )

    if not args.no_peers:
        grep_t, _, out = run_timed(["grep", "-c", "Failed password", str(args.log)])
        print(
            f"grep -c 'Failed password': {grep_t:.2f}s, {lines / grep_t:,.0f} lines/s ({out.strip()} matches)"
        )
        if shutil.which("fail2ban-regex"):
            f2b_t, _, out = run_timed(["fail2ban-regex", str(args.log), "sshd"])
            matched = next((ln for ln in out.splitlines() if ln.startswith("Lines:")), "").strip()
            print(
                f"fail2ban-regex FILE sshd: {f2b_t:.1f}s, {lines / f2b_t:,.0f} lines/s ({matched})"
            )
        else:
            print("fail2ban-regex: not installed (apt-get install fail2ban)")
    if args.prefill_store is None:
        shutil.rmtree(data_dir)


if __name__ == "__main__":
    main()
