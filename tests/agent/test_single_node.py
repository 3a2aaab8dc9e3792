"""Single-node mode: `keeptrail serve --collect` tails files into its own store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.agent.procs import free_port, stored_events


def _serve(data: Path, config: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "keeptrail",
                "serve",
                "--listen",
                f"127.0.0.1:{port}",
                "--data-dir",
                str(data),
                "--collect",
                str(config),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"server did not start: {log.read_text()[-2000:]}")


def _count(data: Path) -> int:
    """Distinct and total stored sshd events; they must be equal (nothing twice)."""
    raws = [e.raw for e in stored_events(data, "action:ssh.invalid_user")]  # raw is sealed
    total, distinct = len(raws), len(set(raws))
    assert total == distinct, "an event was stored twice"
    return total


def _wait_for(data: Path, n: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _count(data) >= n:
            return
        time.sleep(0.1)
    raise AssertionError(f"only {_count(data)} of {n} events arrived")


def test_serve_collect_stores_tailed_lines_once_across_a_kill(tmp_path: Path) -> None:
    """Lines appended to a tailed file reach the server's store, once, even across SIGKILL."""
    data, log, out = tmp_path / "data", tmp_path / "auth.log", tmp_path / "server.out"
    config = tmp_path / "agent.toml"
    config.write_text(
        f'[agent]\nstate_dir = "{tmp_path / "state"}"\nhost = "single"\n\n'
        f'[[sources]]\ntype = "file"\nname = "auth"\npaths = ["{log}"]\npoll_seconds = 0.1\n'
        'timezone = "UTC"\n'
    )

    def append(start: int, count: int) -> None:
        with log.open("a") as f:
            for i in range(start, start + count):
                f.write(
                    f"Nov 20 09:14:02 web-1 sshd[{i}]: Invalid user u{i} from 203.0.113.9"
                    f" port {1000 + i}\n"
                )

    append(0, 200)
    port = free_port()
    proc = _serve(data, config, port, out)
    try:
        _wait_for(data, 200)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        append(200, 300)
        proc = _serve(data, config, port, out)
        _wait_for(data, 500)
        time.sleep(1)  # nothing more may arrive
        assert _count(data) == 500
    finally:
        proc.terminate()
        proc.wait(30)
    verify = subprocess.run(
        [sys.executable, "-m", "keeptrail", "verify", "--no-record", "--data-dir", str(data)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={**os.environ},
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
