"""A delivery pending when the server is killed (-9) is delivered by the next server."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from tests.factories import make_event
from tests.notify.receivers import HttpReceiver, Received, http_receiver

from keeptrail.event import to_document
from keeptrail.notify import webhook
from keeptrail.server.tokens import TokenStore

SECRET = "restart-test-secret-0123456789abcdef"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(data_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "KT_RESTART_SECRET": SECRET}
    env.pop("KEEPTRAIL_CONFIG", None)
    with log.open("ab") as out:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "keeptrail",
                "serve",
                "--listen",
                f"127.0.0.1:{port}",
                "--data-dir",
                str(data_dir),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"the server did not start: {log.read_text()[-2000:]}")
        time.sleep(0.1)


def _rule_of(request: Received) -> str:
    return str(json.loads(request.body)["alert"]["rule_id"])


def _wait(rx: HttpReceiver, after: int, rule: str, seconds: float = 30) -> Received:
    """The first request after the ``after`` first ones that carries an alert of ``rule``."""
    deadline = time.monotonic() + seconds
    while True:
        for request in rx.requests[after:]:
            if _rule_of(request) == rule:
                return request
        assert time.monotonic() < deadline, f"no {rule} alert arrived"
        time.sleep(0.05)


def test_pending_delivery_survives_kill_9(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    store = TokenStore(data_dir)
    _, ingest = store.create(name="ingest", role="ingest", created_by="test")
    store.close()
    port = _free_port()
    log = tmp_path / "server.log"
    with http_receiver(statuses=[503] * 1000) as rx:
        (data_dir / "keeptrail.toml").write_text(
            '[notify]\nbackoff = "1s"\nmax_backoff = "1s"\n'
            f'[[notify.webhook]]\nname = "soc"\nurl = "{rx.url}/hook"\n'
            'secret = "$env:KT_RESTART_SECRET"\n'
        )
        server = _serve(data_dir, port, log)
        try:
            event = make_event(outcome="success", reason=None, actor_name="root", target_host="h9")
            answer = httpx.post(
                f"http://127.0.0.1:{port}/api/v1/events",
                json=[to_document(event)],
                headers={"Authorization": f"Bearer {ingest}"},
                timeout=30,
            )
            assert answer.status_code == 200
            first = _wait(rx, 0, "root-login")  # refused (503): pending, retried every second
        finally:
            server.send_signal(signal.SIGKILL)
            server.wait(30)
        rx.statuses.clear()  # the receiver is back
        seen = len(rx.requests)
        server = _serve(data_dir, port, log)
        try:
            delivered = _wait(rx, seen, "root-login")
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(30)
    assert webhook.verify(SECRET.encode(), delivered.headers, delivered.body)
    # the same delivery as the one refused before the kill, resumed from the outbox
    assert delivered.headers["X-Keeptrail-Delivery"] == first.headers["X-Keeptrail-Delivery"]
    assert json.loads(delivered.body)["alert"]["key"] == {"target.host": "h9"}
