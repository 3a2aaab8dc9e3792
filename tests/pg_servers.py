"""Real ``keeptrail serve --store postgresql://…`` processes on loopback, for the several-server
tests: each has its own data directory (the shared keys copied in) and its own log file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.agent.procs import free_port


class PgServer:
    """One server process; ``token`` (an ingest token) is what :meth:`post` sends."""

    def __init__(
        self, url: str, data_dir: Path, log: Path, *, env: dict[str, str] | None = None
    ) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.token = ""
        environ = {**os.environ, **(env or {})}
        environ.pop("KEEPTRAIL_CONFIG", None)
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable, "-m", "keeptrail", "serve",
                    "--listen", f"127.0.0.1:{self.port}",
                    "--data-dir", str(data_dir),
                    "--store", url,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=environ,
            )  # fmt: skip

    def wait_ready(self, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"server did not become ready: {self.log.read_text()[-2000:]}")

    def post(self, docs: list[dict[str, object]], token: str | None = None) -> int:
        """POST documents to the ingest API; the number stored (an HTTP error raises)."""
        answer = httpx.post(
            f"{self.base}/api/v1/events",
            json=docs,
            headers={"Authorization": f"Bearer {token or self.token}"},
            timeout=60,
        )
        answer.raise_for_status()
        return int(answer.json()["stored"])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
