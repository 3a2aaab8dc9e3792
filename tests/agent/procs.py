"""Real processes for end-to-end tests: a Keeptrail server and agent on loopback ports."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx

from keeptrail.event import Event
from keeptrail.query.parse import parse
from keeptrail.store import open_store

PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def keeptrail(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "keeptrail", *args],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **(env or {})},
        timeout=60,
    )


class ServerProc:
    """``keeptrail serve`` on a fixed loopback port, restartable after a SIGKILL."""

    def __init__(self, data_dir: Path, log: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.token = keeptrail(
            "tokens", "create", "--name", "agent", "--role", "ingest", "--data-dir", str(data_dir)
        ).stdout.strip()

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    PYTHON,
                    "-m",
                    "keeptrail",
                    "serve",
                    "--listen",
                    f"127.0.0.1:{self.port}",
                    "--data-dir",
                    str(self.data_dir),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server did not become ready; see {self.log}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None:
            self.proc.send_signal(sig)
            self.proc.wait(30)
            self.proc = None

    def stored_raws(self, source: str = "file") -> list[str]:
        # raw is sealed at rest (docs/storage.md): read it through the store, as a user would
        return [e.raw for e in stored_events(self.data_dir, f"collector.source:{source}")]

    def count(self, source: str = "file") -> int:
        # collector_source is a clear column of every partition table
        db = sqlite3.connect(f"file:{self.data_dir / 'events.db'}?mode=ro", uri=True, timeout=10)
        try:
            names = [
                n for (n,) in db.execute("SELECT name FROM partitions WHERE state != 'purged'")
            ]
            return sum(
                int(
                    db.execute(
                        f'SELECT count(*) FROM "{name}" WHERE collector_source = ?', (source,)
                    ).fetchone()[0]
                )
                for name in names
            )
        finally:
            db.close()


class AgentProc:
    """``keeptrail agent --config`` with its token in the environment, restartable."""

    def __init__(self, config: Path, token: str, log: Path) -> None:
        self.config = config
        self.env = {**os.environ, "KEEPTRAIL_AGENT_TOKEN": token}
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [PYTHON, "-m", "keeptrail", "agent", "--config", str(self.config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
            )

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None:
            self.proc.send_signal(sig)
            self.proc.wait(30)
            self.proc = None


def agent_config(path: Path, *, url: str, state: Path, globs: list[str], **extra: object) -> Path:
    lines = [
        "[agent]",
        f'state_dir = "{state}"',
        'host = "e2e-host"',
        f"heartbeat_seconds = {extra.get('heartbeat_seconds', 1)}",
        "status_seconds = 0.5",
        "[server]",
        f'url = "{url}"',
        'token = "$env:KEEPTRAIL_AGENT_TOKEN"',
        f"batch_size = {extra.get('batch_size', 1000)}",
        f"linger_seconds = {extra.get('linger_seconds', 0.1)}",
        "backoff_initial_seconds = 0.05",
        "backoff_max_seconds = 0.5",
        "timeout_seconds = 10",
        "[spool]",
        f"max_events = {extra.get('max_events', 1_000_000)}",
        "[[sources]]",
        'type = "file"',
        'name = "app"',
        f"paths = {globs!r}".replace("'", '"'),
        f"poll_seconds = {extra.get('poll_seconds', 0.05)}",
        "rotate_wait_seconds = 1",
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def stored_events(data_dir: Path, query: str) -> list[Event]:
    """Every stored event matching ``query``, through a read-only store (events are sealed)."""
    store = open_store(data_dir, readonly=True)
    try:
        out: list[Event] = []
        cursor = None
        while True:
            page = store.search(parse(query), limit=1000, cursor=cursor)
            out.extend(page.events)
            if page.next_cursor is None:
                return out
            cursor = page.next_cursor
    finally:
        store.close()
