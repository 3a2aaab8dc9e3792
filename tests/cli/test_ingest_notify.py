"""A one-off ``keeptrail ingest`` delivers the alerts it raises to the ``[notify]`` sinks.

Before, only ``keeptrail serve`` delivered: alerts raised by a cron-driven ingest waited for a
server that might never run. Real webhook receivers on loopback; the CLI runs as a subprocess.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.agent.procs import keeptrail
from tests.notify.receivers import http_receiver

from keeptrail.notify import webhook
from keeptrail.notify.outbox import Outbox

SECRET = "ingest-notify-secret-0123456789abcdef"
ROOT_LOGIN = (
    "Nov 14 22:13:20 web-7 sshd[4242]: Accepted password for root from 203.0.113.50"
    " port 40022 ssh2\n"
)


def _setup(tmp_path: Path, url: str) -> tuple[Path, Path]:
    data = tmp_path / "data"
    data.mkdir()
    (data / "keeptrail.toml").write_text(
        f'[notify]\nbackoff = "1s"\n[[notify.webhook]]\nname = "soc"\nurl = "{url}/hook"\n'
        'secret = "$env:KT_INGEST_SECRET"\n'
    )
    log = tmp_path / "auth.log"
    log.write_text(ROOT_LOGIN)
    return data, log


def test_ingest_delivers_the_alerts_it_raises(tmp_path: Path) -> None:
    with http_receiver() as rx:
        data, log = _setup(tmp_path, rx.url)
        done = keeptrail("ingest", str(log), "-d", str(data), env={"KT_INGEST_SECRET": SECRET})
    bodies = [json.loads(r.body) for r in rx.requests]
    assert [b["alert"]["rule_id"] for b in bodies if b["alert"]["rule_id"] == "root-login"] == [
        "root-login"
    ]
    assert all(webhook.verify(SECRET.encode(), r.headers, r.body) for r in rx.requests)
    assert "0 pending in the outbox" in done.stdout  # every delivery arrived


def test_a_receiver_that_is_down_leaves_the_delivery_for_the_server(tmp_path: Path) -> None:
    with http_receiver(statuses=[503] * 100) as rx:
        data, log = _setup(tmp_path, rx.url)
        done = keeptrail("ingest", str(log), "-d", str(data), env={"KT_INGEST_SECRET": SECRET})
    assert rx.requests  # it was tried once ...
    assert "keeptrail serve retries them" in done.stdout
    outbox = Outbox(data / "notify.db")
    try:  # ... and waits in the outbox, due again after the backoff
        assert outbox.counts().get("pending", 0) >= 1
        assert not outbox.counts().get("delivered")
    finally:
        outbox.close()


def test_a_broken_notify_table_does_not_stop_ingest(tmp_path: Path) -> None:
    with http_receiver() as rx:
        data, log = _setup(tmp_path, rx.url)
        done = keeptrail("ingest", str(log), "-d", str(data))  # the secret's variable is unset
    assert "notifications are off for this run" in done.stderr
    assert "1 parsed" in done.stdout
    assert not rx.requests
