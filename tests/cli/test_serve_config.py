"""``keeptrail serve --config FILE``: every capability reads FILE, not <data-dir>/keeptrail.toml.

A real server process, a real webhook receiver and a real store. The configuration lives
outside the data directory (as /etc/keeptrail/keeptrail.toml would); each of its tables must
change what the server does: ``[protect] encrypt = false`` (no keyring), ``[detect]`` (only the
site's rule runs, not the pack), ``[notify]`` (the alert reaches the webhook).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import orjson
import pytest
from tests.notify.receivers import http_receiver
from tests.server.conftest import docs, make_tokens

SITE_RULE = """\
- id: site-any-ssh-failure
  title: Any failed SSH login
  severity: high
  match: action:ssh.login outcome:failure
  reason: "a failed SSH login"
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(args: list[str], data: Path, url: str) -> Iterator[subprocess.Popen[str]]:
    """``keeptrail serve ARGS`` until the block ends; waits for /readyz."""
    env = {**os.environ, "KEEPTRAIL_DATA_DIR": str(data)}
    for name in ("KEEPTRAIL_CONFIG", "KEEPTRAIL_STORE", "KEEPTRAIL_LISTEN"):
        env.pop(name, None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "keeptrail", "serve", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                raise AssertionError(proc.stdout.read() if proc.stdout else "serve exited")
            assert time.monotonic() < deadline, "the server did not become ready"
            time.sleep(0.1)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)


def test_every_table_of_the_config_file_is_used(tmp_path: Path) -> None:
    data = tmp_path / "data"
    tokens = make_tokens(data)
    rules = tmp_path / "etc" / "rules"
    rules.mkdir(parents=True)
    (rules / "site.yaml").write_text(SITE_RULE)
    secret = tmp_path / "etc" / "webhook.key"
    secret.write_text("a-webhook-secret-of-32-bytes-000")
    secret.chmod(0o600)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with http_receiver() as receiver:
        config = tmp_path / "etc" / "keeptrail.toml"
        config.write_text(
            f'[server]\nlisten = "127.0.0.1:{port}"\n'
            "[protect]\nencrypt = false\n"
            f'[detect]\npack = false\nrules_dirs = ["{rules}"]\n'
            f'[[notify.webhook]]\nname = "soc"\nurl = "{receiver.url}/hook"\n'
            f'secret = "$file:{secret}"\n'
        )
        with serving(["--config", str(config)], data, url):
            ingest = {"Authorization": f"Bearer {tokens['ingest']}"}
            r = httpx.post(f"{url}/api/v1/events", json=docs(1), headers=ingest, timeout=30)
            assert r.status_code == 200, r.text
            viewer = {"Authorization": f"Bearer {tokens['viewer']}"}
            alerts = httpx.get(f"{url}/api/v1/alerts", headers=viewer, timeout=30).json()
            # [detect] from --config: the site rule ran, the pack did not.
            assert [a["rule_id"] for a in alerts["alerts"]] == ["site-any-ssh-failure"]
            # [notify] from --config: the webhook received it.
            assert receiver.arrived.wait(30), "no webhook delivery"
            body = orjson.loads(receiver.requests[0].body)
            assert "site-any-ssh-failure" in orjson.dumps(body).decode()
            # The start is audited with the file it read.
            found = httpx.get(
                f"{url}/api/v1/events",
                params={"q": "action:keeptrail.config_load"},
                headers=viewer,
                timeout=30,
            ).json()["events"]
            assert found[0]["details"]["config_file"] == str(config)
    # [protect] from --config: encryption off, so the store made no keyring.
    assert (data / "events.db").exists()
    assert not (data / "keyring.db").exists()


def test_the_data_dir_config_file_is_read_without_config(tmp_path: Path) -> None:
    """No --config: <data-dir>/keeptrail.toml is the file, [server] included."""
    data = tmp_path / "data"
    data.mkdir()
    port = free_port()
    (data / "keeptrail.toml").write_text(
        f'[server]\nlisten = "127.0.0.1:{port}"\n[protect]\nencrypt = false\n'
    )
    with serving([], data, f"http://127.0.0.1:{port}"):
        pass
    assert (data / "events.db").exists()
    assert not (data / "keyring.db").exists()


@pytest.mark.postgres
def test_the_postgres_store_reads_the_config_file_too(tmp_path: Path, postgres_url: str) -> None:
    """serve --store postgresql://… --config FILE: [protect] from FILE reaches open_postgres."""
    data = tmp_path / "data"
    tokens = make_tokens(data, postgres_url)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = tmp_path / "etc" / "keeptrail.toml"
    config.parent.mkdir()
    config.write_text(
        f'[server]\nlisten = "127.0.0.1:{port}"\n[protect]\nencrypt = false\n'
        "[detect]\nenabled = false\n"
    )
    with serving(["--config", str(config), "--store", postgres_url], data, url):
        ingest = {"Authorization": f"Bearer {tokens['ingest']}"}
        r = httpx.post(f"{url}/api/v1/events", json=docs(2), headers=ingest, timeout=30)
        assert r.status_code == 200, r.text
        assert r.json()["stored"] == 2
    # Encryption off: no master key was made (the ledger key is, beside it).
    assert (data / "keys").is_dir()
    assert not list((data / "keys").glob("master-v*.key"))
