"""Agent end to end: a line appended to a tailed file → searchable on the server (p50, p95).

Starts a real ``keeptrail serve`` and ``keeptrail agent`` on loopback, appends background
lines at ``--rate`` per second, and every ``--interval`` appends a probe line with a unique
word, then asks the server's search API (a viewer token) until the probe is found (as the unparsed
event of the file line: the server's self-audit event of the search itself also holds the word). Prints the
latency percentiles and the resident memory (current and peak) of the agent and the server.

    python bench/bench_agent.py --probes 200 --rate 1000
"""

from __future__ import annotations

import argparse
import os
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

PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def token(data: Path, name: str, role: str) -> str:
    cmd = [PY, "-m", "keeptrail", "tokens", "create", "--name", name, "--role", role]
    out = subprocess.run(
        [*cmd, "--data-dir", str(data)], check=True, capture_output=True, text=True
    )
    return out.stdout.strip()


def rss_kib(pid: int) -> tuple[int, int]:
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--probes", type=int, default=200)
    ap.add_argument("--interval", type=float, default=0.05, help="seconds between probes")
    ap.add_argument("--rate", type=float, default=1000, help="background lines per second")
    ap.add_argument("--poll-seconds", type=float, default=0.25, help="the file source's poll")
    ap.add_argument("--linger-seconds", type=float, default=0.2, help="the shipper's linger")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="kt-bench-agent-"))
    data, logs = work / "server", work / "logs"
    logs.mkdir()
    ingest, viewer = token(data, "agent", "ingest"), token(data, "bench", "viewer")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    (work / "agent.toml").write_text(
        f'[agent]\nstate_dir = "{work / "state"}"\nheartbeat_seconds = 60\n'
        f'[server]\nurl = "{url}"\ntoken = "$env:KEEPTRAIL_AGENT_TOKEN"\n'
        f"linger_seconds = {args.linger_seconds}\n"
        f'[[sources]]\ntype = "file"\nname = "bench"\npaths = ["{logs}/*.log"]\n'
        f"poll_seconds = {args.poll_seconds}\n"
    )
    with (work / "server.out").open("wb") as out:
        server = subprocess.Popen(
            [
                PY,
                "-m",
                "keeptrail",
                "serve",
                "--listen",
                f"127.0.0.1:{port}",
                "--data-dir",
                str(data),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {viewer}"})
    while True:
        try:
            if client.get("/readyz").status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    with (work / "agent.out").open("wb") as out:
        agent = subprocess.Popen(
            [PY, "-m", "keeptrail", "agent", "--config", str(work / "agent.toml")],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "KEEPTRAIL_AGENT_TOKEN": ingest},
        )
    log = (logs / "app.log").open("a")
    lock = threading.Lock()
    stop = threading.Event()

    def background() -> None:
        i = 0
        began = time.monotonic()
        while not stop.is_set():
            with lock:
                for _ in range(max(1, int(args.rate / 100))):
                    log.write(
                        f"Mar  1 12:00:00 web-1 sshd[1]: Failed password for root"
                        f" from 192.0.2.{i % 250} port {i % 60000} ssh2\n"
                    )
                    i += 1
                log.flush()
            time.sleep(max(0.0, i / args.rate - (time.monotonic() - began)))

    threading.Thread(target=background, daemon=True).start()
    latencies: list[float] = []
    agent_peak = server_peak = 0
    try:
        time.sleep(1.0)  # the agent's first poll, the server's first batch
        for n in range(args.probes):
            word = f"probe{os.getpid()}x{n}"
            with lock:
                log.write(f"Mar  1 12:00:00 web-1 app[2]: {word}\n")
                log.flush()
            t0 = time.perf_counter()
            while True:
                page = client.get(
                    "/api/v1/events", params={"q": f"{word} AND category:unparsed", "limit": 1}
                ).json()
                if page.get("events"):
                    break
                time.sleep(0.005)
            latencies.append(time.perf_counter() - t0)
            agent_peak = max(agent_peak, rss_kib(agent.pid)[0])
            server_peak = max(server_peak, rss_kib(server.pid)[0])
            time.sleep(args.interval)
        agent_rss, agent_hwm = rss_kib(agent.pid)
        server_rss, server_hwm = rss_kib(server.pid)
    finally:
        stop.set()
        agent.send_signal(signal.SIGTERM)
        server.send_signal(signal.SIGTERM)
        agent.wait(30)
        server.wait(30)
    ms = [x * 1000 for x in latencies]
    print(
        f"line appended → searchable on the server, {len(ms)} probes, background"
        f" {args.rate:.0f} lines/s, poll {args.poll_seconds}s, linger {args.linger_seconds}s"
    )
    print(
        f"  p50 {percentile(ms, 50):.0f} ms   p95 {percentile(ms, 95):.0f} ms"
        f"   mean {statistics.fmean(ms):.0f} ms   max {max(ms):.0f} ms"
    )
    print(f"  agent RSS {agent_rss / 1024:.1f} MiB (peak {agent_hwm / 1024:.1f} MiB)")
    print(f"  server RSS {server_rss / 1024:.1f} MiB (peak {server_hwm / 1024:.1f} MiB)")
    print(f"  work dir {work}")


if __name__ == "__main__":
    main()
