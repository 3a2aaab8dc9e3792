"""HTTP ingest throughput: POST batches of 1,000 events to a real server on loopback.

Starts ``keeptrail serve`` as its own process (so client and server do not share a GIL) on a
fresh data directory, creates an ingest token, then has a few client threads POST pre-encoded
batches (each event with its own UUIDv7, as the agent sends them) until all are sent. Prints
events/s, request latency percentiles and the server's resident memory (now and peak).

    python bench/bench_http_ingest.py --batches 200 --clients 4 [--gzip]
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import orjson

from keeptrail.event import Event, to_document, uuid7
from keeptrail.server.tokens import TokenStore

BASE_TIME = 1_700_000_000_000_000


def make_batch(n: int, offset: int) -> list[dict[str, object]]:
    docs = []
    for i in range(n):
        k = offset + i
        e = Event(
            time=BASE_TIME + k * 1000,
            category="authentication",
            action="ssh.login",
            outcome="failure" if k % 3 else "success",
            reason="bad_password" if k % 3 else None,
            actor_name=f"user{k % 500}",
            actor_type="user",
            source_ip=f"10.{k % 250}.{(k // 250) % 250}.{k % 7 + 1}",
            source_port=1024 + k % 60000,
            target_host=f"web-{k % 20}",
            target_system="ssh",
            details={"pid": 1000 + k % 30000},
            collector_host=f"web-{k % 20}",
            collector_source="file",
            collector_parser="sshd",
            collector_file="/var/log/auth.log",
            collector_offset=k * 120,
            raw=f"Nov 14 22:13:20 web-{k % 20} sshd[{1000 + k % 30000}]: Failed password for "
            f"user{k % 500} from 10.{k % 250}.{(k // 250) % 250}.{k % 7 + 1} port 4022 ssh2",
            id=uuid7(),
        )
        docs.append(to_document(e))
    return docs


def rss_kib(pid: int) -> tuple[int, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--batches", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--gzip", action="store_true", help="send Content-Encoding: gzip bodies")
    ap.add_argument("--keep", action="store_true", help="keep the data directory")
    args = ap.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="kt-bench-http-"))
    data = workdir / "data"
    tokens = TokenStore(data)
    _, secret = tokens.create(name="bench", role="ingest", created_by="bench")
    tokens.close()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = workdir / "keeptrail.toml"
    config.write_text(
        f'[server]\nlisten = "127.0.0.1:{port}"\n[server.rate_limit]\nrequests_per_second = 0\n'
    )
    env = {**os.environ, "KEEPTRAIL_DATA_DIR": str(data)}
    server = subprocess.Popen(
        [sys.executable, "-m", "keeptrail", "serve", "--config", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/readyz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("server did not start")
            time.sleep(0.1)
        _, idle_peak = rss_kib(server.pid)

        print(f"encoding {args.batches} batches of {args.batch_size} events...", flush=True)
        headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
        if args.gzip:
            headers["Content-Encoding"] = "gzip"
        bodies = []
        for b in range(args.batches):
            raw = orjson.dumps(make_batch(args.batch_size, b * args.batch_size))
            bodies.append(gzip.compress(raw, compresslevel=1) if args.gzip else raw)
        mean_body = statistics.mean(len(x) for x in bodies)

        latencies: list[float] = []
        stored = 0
        lock = threading.Lock()
        next_index = iter(range(len(bodies)))

        def client() -> None:
            nonlocal stored
            with httpx.Client(base_url=url, headers=headers, timeout=120) as c:
                while True:
                    with lock:
                        i = next(next_index, None)
                    if i is None:
                        return
                    t0 = time.perf_counter()
                    r = c.post("/api/v1/events", content=bodies[i])
                    dt = time.perf_counter() - t0
                    r.raise_for_status()
                    with lock:
                        latencies.append(dt)
                        stored += r.json()["stored"]

        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - start
        rss, peak = rss_kib(server.pid)
        total = args.batches * args.batch_size
        lat = sorted(latencies)
        print(
            f"sent {total:,} events in {args.batches} batches of {args.batch_size}"
            f" ({mean_body / 1024:.0f} KiB/body{', gzip' if args.gzip else ''}), {args.clients} clients"
        )
        print(f"stored {stored:,}; elapsed {elapsed:.2f}s -> {total / elapsed:,.0f} events/s")
        print(
            f"request latency p50 {lat[len(lat) // 2] * 1000:.1f} ms, p95 {lat[int(len(lat) * 0.95)] * 1000:.1f} ms,"
            f" max {lat[-1] * 1000:.1f} ms"
        )
        print(
            f"server RSS {rss / 1024:.0f} MiB now, peak {peak / 1024:.0f} MiB (idle peak {idle_peak / 1024:.0f} MiB)"
        )
        if stored != total:
            raise SystemExit(f"expected {total} stored, got {stored}")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
