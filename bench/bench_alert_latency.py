"""Alert latency: a line appended to a tailed file → the signed webhook on loopback has the alert.

Starts a real ``keeptrail serve --collect`` (single-node mode: the server tails the file itself,
the rules engine runs after each commit with the whole shipped pack, the notifier delivers from
its outbox) and a webhook receiver on 127.0.0.1 that verifies every signature. Every
``--interval`` seconds it appends one ``Accepted password for root`` line from a new host, which
the pack's ``root-login`` rule turns into a new alert (one key per host). The latency of a probe
is the receiver's arrival time minus the time the line was written (same clock, same machine).

    python bench/bench_alert_latency.py --alerts 1000 --interval 0.02
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from keeptrail.notify import webhook

PY = sys.executable
SECRET = "bench-webhook-secret-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


class Receiver:
    """Arrival time of each root-login alert, by host; counts bad signatures."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.bad_signatures = 0
        self.other_alerts = 0
        self.lock = threading.Lock()

        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                now = time.time()
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                ok = webhook.verify(SECRET.encode(), dict(self.headers.items()), body)
                self.send_response(200 if ok else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()
                alert = json.loads(body)["alert"]
                with receiver.lock:
                    if not ok:
                        receiver.bad_signatures += 1
                    elif alert["rule_id"] == "root-login":
                        host = alert["key"].get("target.host", "")
                        receiver.arrived.setdefault(host, now)
                    else:
                        receiver.other_alerts += 1

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--alerts", type=int, default=1000)
    ap.add_argument("--interval", type=float, default=0.02, help="seconds between probe lines")
    ap.add_argument("--poll-seconds", type=float, default=0.1, help="the file source's poll")
    ap.add_argument("--wait", type=float, default=30.0, help="seconds to wait for stragglers")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="kt-bench-alerts-"))
    data, logs = work / "data", work / "logs"
    data.mkdir()
    logs.mkdir()
    receiver = Receiver()
    (data / "keeptrail.toml").write_text(
        '[notify]\nmax_attempts = 5\nbackoff = "1s"\n'
        f'[[notify.webhook]]\nname = "bench"\nurl = "{receiver.url}"\n'
        'secret = "$env:KT_BENCH_WEBHOOK_SECRET"\n'
    )
    (work / "collect.toml").write_text(
        f'[agent]\nstate_dir = "{work / "state"}"\nheartbeat_seconds = 3600\n'
        f'[[sources]]\ntype = "file"\nname = "auth"\npaths = ["{logs}/auth.log"]\n'
        f'poll_seconds = {args.poll_seconds}\ntimezone = "UTC"\n'
    )
    log_path = logs / "auth.log"
    log_path.write_text("")
    port = free_port()
    env = {**os.environ, "KT_BENCH_WEBHOOK_SECRET": SECRET, "KEEPTRAIL_CONFIG": ""}
    env.pop("KEEPTRAIL_CONFIG")
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
                "--collect",
                str(work / "collect.toml"),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    written: dict[str, float] = {}
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"server did not start; see {work / 'server.out'}") from None
                time.sleep(0.1)
        time.sleep(1.0)  # the source's first poll
        stamp = time.strftime("%b %d %H:%M:%S", time.gmtime()).replace(" 0", "  ", 1)
        with log_path.open("a") as log:
            for n in range(args.alerts):
                host = f"bench-host-{n}"
                log.write(
                    f"{stamp} {host} sshd[{1000 + n}]: Accepted password for root from "
                    f"198.51.100.{n % 250 + 1} port {40000 + n} ssh2\n"
                )
                log.flush()
                written[host] = time.time()
                time.sleep(args.interval)
        until = time.monotonic() + args.wait
        while time.monotonic() < until and len(receiver.arrived) < len(written):
            time.sleep(0.1)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
    latencies = [receiver.arrived[h] - t for h, t in written.items() if h in receiver.arrived]
    missing = len(written) - len(latencies)
    print(f"alerts written: {len(written)}, delivered: {len(latencies)}, missing: {missing}")
    print(f"bad signatures: {receiver.bad_signatures}, other pack alerts: {receiver.other_alerts}")
    if latencies:
        print(
            f"latency line appended -> webhook received: p50 {percentile(latencies, 50):.3f} s, "
            f"p95 {percentile(latencies, 95):.3f} s, p99 {percentile(latencies, 99):.3f} s, "
            f"max {max(latencies):.3f} s, mean {statistics.mean(latencies):.3f} s"
        )
    print(f"(file poll {args.poll_seconds} s, one probe every {args.interval} s; work dir {work})")


if __name__ == "__main__":
    main()
