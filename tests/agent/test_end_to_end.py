"""A real server and a real agent on loopback, killed at random while logs rotate both ways.

Sizes are environment-tunable; the default run is small, ``-m slow`` runs the issue's full
figures (200,000 lines, several kills of each, the server down for a minute).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.agent.procs import PYTHON, AgentProc, ServerProc, agent_config


def line(i: int) -> str:
    return (
        f"2024-03-01T12:{i // 60 % 60:02d}:{i % 60:02d}.000000+00:00 web-1 app[7]: e2e line {i:07d}"
    )


class Writer(threading.Thread):
    """Appends numbered lines, rotating by rename and by copytruncate in turn."""

    def __init__(self, logdir: Path, total: int, rate: float, rotate_every: int) -> None:
        super().__init__(daemon=True)
        self.logdir, self.total, self.rate, self.rotate_every = logdir, total, rate, rotate_every
        self.rotations = 0

    def run(self) -> None:
        log = self.logdir / "app.log"
        out = log.open("a")
        began = time.monotonic()
        reopen_at = -1
        for i in range(self.total):
            if i == reopen_at:  # the program noticed the rename and reopens its log
                out.close()
                out = log.open("a")
            out.write(line(i) + "\n")
            if i % 100 == 99:
                out.flush()
                ahead = (i + 1) / self.rate - (time.monotonic() - began)
                if ahead > 0:
                    time.sleep(ahead)
            if i % self.rotate_every == self.rotate_every - 1:
                out.flush()
                self.shift()
                if self.rotations % 2 == 0:  # rename: the program keeps its old handle a while
                    os.replace(log, self.logdir / "app.log.1")
                    reopen_at = i + 50
                else:  # copytruncate: copy, then empty the file under the writer
                    shutil.copyfile(log, self.logdir / "app.log.1")
                    out.truncate(0)
                    out.seek(0)
                    time.sleep(0.2)  # logrotate's window; a read in flight ends first
                self.rotations += 1
        out.close()

    def shift(self) -> None:
        names = sorted((p for p in self.logdir.glob("app.log.*")), key=lambda p: -int(p.suffix[1:]))
        for p in names:
            os.replace(p, self.logdir / f"app.log.{int(p.suffix[1:]) + 1}")


def run_scenario(
    tmp_path: Path,
    *,
    total: int,
    rate: float,
    agent_kills: int,
    server_downs: list[float],
) -> None:
    logdir = tmp_path / "logs"
    logdir.mkdir()
    server = ServerProc(tmp_path / "server", tmp_path / "server.log")
    config = agent_config(
        tmp_path / "agent.toml",
        url=server.url,
        state=tmp_path / "agent-state",
        globs=[str(logdir / "app.log*")],
    )
    agent = AgentProc(config, server.token, tmp_path / "agent.log")
    server.start()
    agent.start()
    writer = Writer(logdir, total, rate, rotate_every=max(500, total // 8))
    duration = total / rate
    rng = random.Random(5)
    plan = sorted(
        [(rng.uniform(0.1, 0.9) * duration, "agent") for _ in range(agent_kills)]
        + [(rng.uniform(0.1, 0.9) * duration, f"server:{down}") for down in server_downs]
    )
    writer.start()
    began = time.monotonic()
    try:
        for at, who in plan:
            time.sleep(max(0.0, at - (time.monotonic() - began)))
            if who == "agent":
                agent.kill()
                time.sleep(rng.uniform(0.05, 0.5))
                agent.start()
            else:
                server.kill()
                time.sleep(float(who.partition(":")[2]))
                server.start()
        writer.join()
        deadline = time.monotonic() + 60 + total / 5000
        while time.monotonic() < deadline and server.count() < total:
            time.sleep(0.25)
        time.sleep(1.0)  # anything still in flight would be a duplicate: let it land
    finally:
        agent.kill(signal.SIGTERM)
        server.kill(signal.SIGTERM)
    raws = server.stored_raws()
    counts = Counter(raws)
    duplicated = [r for r, n in counts.items() if n > 1]
    missing = {line(i) for i in range(total)} - counts.keys()
    assert not duplicated, f"{len(duplicated)} lines stored twice, e.g. {duplicated[:3]}"
    assert not missing, f"{len(missing)} lines never stored, e.g. {sorted(missing)[:3]}"
    assert len(raws) == total
    assert writer.rotations >= 2
    heartbeats = server.count("agent")
    assert heartbeats >= 1
    verify = subprocess.run(
        [PYTHON, "-m", "keeptrail", "verify", "--data-dir", str(server.data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_kill_agent_and_server_while_logs_rotate(tmp_path: Path) -> None:
    """Every line is stored exactly once despite SIGKILLs of both sides and rotations both ways."""
    run_scenario(
        tmp_path,
        total=int(os.environ.get("KEEPTRAIL_E2E_LINES", "20000")),
        rate=float(os.environ.get("KEEPTRAIL_E2E_RATE", "2500")),
        agent_kills=2,
        server_downs=[0.5, 0.5],
    )


def test_server_down_while_lines_keep_coming(tmp_path: Path) -> None:
    """With the server down for a while, the agent spools; everything arrives after."""
    run_scenario(
        tmp_path,
        total=6_000,
        rate=1_000,
        agent_kills=0,
        server_downs=[float(os.environ.get("KEEPTRAIL_E2E_DOWNTIME", "3"))],
    )


@pytest.mark.slow
def test_full_soak_two_hundred_thousand_lines(tmp_path: Path) -> None:
    """The issue's figures: 200,000 lines, several kills of each side, a minute of downtime."""
    run_scenario(
        tmp_path,
        total=200_000,
        rate=5_000,
        agent_kills=4,
        server_downs=[0.5, 0.5, float(os.environ.get("KEEPTRAIL_E2E_DOWNTIME", "60"))],
    )
