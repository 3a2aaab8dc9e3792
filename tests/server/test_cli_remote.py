"""``keeptrail serve`` as a process, and ``search``/``stats --server`` against it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from tests.server.conftest import docs


def _kt(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keeptrail", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, dict[str, str], subprocess.Popen[str]]]:
    """``keeptrail serve --config`` on a free loopback port, with access logging on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = tmp_path / "keeptrail.toml"
    config.write_text(f'[server]\nlisten = "127.0.0.1:{port}"\naccess_log = true\n')
    env = {**os.environ, "KEEPTRAIL_DATA_DIR": str(tmp_path / "data")}
    env.pop("KEEPTRAIL_SERVER", None)
    env.pop("KEEPTRAIL_TOKEN", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "keeptrail", "serve", "--config", str(config)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/readyz").status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        assert time.monotonic() < deadline
        time.sleep(0.1)
    try:
        yield url, env, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)


def test_search_and_stats_with_server_round_trip(
    served: tuple[str, dict[str, str], subprocess.Popen[str]], tmp_path: Path
) -> None:
    """search/stats --server show what was ingested over HTTP; tokens come from a file or env."""
    url, env, proc = served
    ingest = _kt("tokens", "create", "--name", "agent", "--role", "ingest", env=env).stdout.strip()
    viewer = _kt("tokens", "create", "--name", "alice", "--role", "viewer", env=env).stdout.strip()
    batch = docs(3, source_ip="192.0.2.9")
    r = httpx.post(
        f"{url}/api/v1/events", json=batch, headers={"Authorization": f"Bearer {ingest}"}
    )
    assert r.json()["stored"] == 3
    token_file = tmp_path / "viewer.token"
    token_file.write_text(viewer + "\n")

    found = _kt(
        "search",
        "ip:192.0.2.9",
        "--format",
        "jsonl",
        "--server",
        url,
        "--token",
        f"@{token_file}",
        env=env,
    )
    assert found.returncode == 0, found.stderr
    assert {orjson.loads(line)["id"] for line in found.stdout.splitlines()} == {
        d["id"] for d in batch
    }
    table = _kt(
        "search",
        "ip:192.0.2.9",
        "--limit",
        "2",
        env={**env, "KEEPTRAIL_SERVER": url, "KEEPTRAIL_TOKEN": viewer},
    )
    assert table.returncode == 0, table.stderr
    assert "192.0.2.9" in table.stdout
    assert "more: --cursor" in table.stderr

    stats = _kt("stats", "--json", "--server", url, "--token", viewer, env=env)
    assert stats.returncode == 0, stats.stderr
    assert orjson.loads(stats.stdout)["top_sources"]["192.0.2.9"] == 3  # (+ the audit trail)

    bad = _kt("search", "user:(alice", "--server", url, "--token", viewer, env=env)
    assert bad.returncode == 2
    assert "invalid query" in bad.stderr
    denied = _kt("search", "--server", url, "--token", ingest, env=env)
    assert denied.returncode == 2
    assert "403" in denied.stderr

    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=30)
    assert "GET /api/v1/events" in output  # the access log was on
    for secret in (ingest, viewer):
        assert secret not in output
