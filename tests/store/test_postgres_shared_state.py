"""Several servers on one PostgreSQL store share tokens, alerts, detection and deliveries.

Behind a load balancer a token made for one server must open the others, an alert acknowledged on
one is acknowledged everywhere, the rules see every server's events once (one engine at a time,
fail-over when it dies), and each alert is delivered once. The first tests drive the pieces in
one process against a real PostgreSQL; the last runs two real ``keeptrail serve`` processes, a
real webhook receiver on loopback, and kills the server that runs the rules with SIGKILL.
"""

from __future__ import annotations

import json
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from tests.agent.procs import keeptrail
from tests.factories import make_event
from tests.notify.receivers import HttpReceiver, http_receiver
from tests.pg_servers import PgServer

from keeptrail.detect.alerts import open_alerts
from keeptrail.detect.runtime import open_engine
from keeptrail.event import to_document, uuid7
from keeptrail.ledger.keys import create_signer
from keeptrail.notify import webhook
from keeptrail.notify.outbox import Outbox
from keeptrail.protect.kek import FileProvider
from keeptrail.server.tokens import TokenError, TokenStore
from keeptrail.state_db import APP_NAME, DETECT_LOCK
from keeptrail.store.postgres import open_postgres

pytestmark = pytest.mark.postgres

SECRET = "shared-state-secret-0123456789abcdef"
T0 = 1_700_000_000_000_000


def _shared_dirs(tmp_path: Path, names: tuple[str, ...] = ("a", "b")) -> list[Path]:
    """Data directories holding the same ledger key and master key (what an operator copies)."""
    dirs = [tmp_path / n for n in names]
    create_signer(dirs[0], "keeptrail/test/shared")
    FileProvider(dirs[0]).create(1, previous=None)
    for d in dirs[1:]:
        d.mkdir()
        shutil.copytree(dirs[0] / "keys", d / "keys")
    return dirs


def _root_login(host: str, offset: int) -> object:
    return make_event(
        outcome="success",
        reason=None,
        actor_name="root",
        target_host=host,
        time=T0 + offset * 1_000_000,
        id=uuid7(),
    )


def test_a_token_made_through_one_server_opens_the_others(
    postgres_url: str, tmp_path: Path
) -> None:
    a, b = _shared_dirs(tmp_path)
    one, other = TokenStore(a, postgres_url), TokenStore(b, postgres_url)
    try:
        token, secret = one.create(name="agent-web1", role="ingest", created_by="test")
        found = other.authenticate(secret)
        assert found is not None
        assert found.id == token.id
        assert found.role == "ingest"
        with pytest.raises(TokenError, match="already exists"):
            other.create(name="agent-web1", role="viewer", created_by="test")
        other.revoke("agent-web1", revoked_by="test")
        assert one.authenticate(secret) is None  # revoked everywhere at once
        assert not (a / "tokens.db").exists()  # nothing kept per server
    finally:
        one.close()
        other.close()


def test_one_engine_at_a_time_and_the_next_carries_on(postgres_url: str, tmp_path: Path) -> None:
    a, b = _shared_dirs(tmp_path)
    store = open_postgres(postgres_url, data_dir=a)
    first = open_engine(a, store=postgres_url)
    second = open_engine(b, store=postgres_url)
    assert first is not None
    assert second is not None
    try:
        store.append([_root_login(f"h{i}", i) for i in range(3)])  # type: ignore[misc]
        raised = first.catch_up(store)
        idle = second.catch_up(store)  # the first holds the engine's lock
        assert raised.alerts_new >= 3
        assert raised.high_water == store.ledger_frontier().size - 1
        assert idle.events == 0
        assert idle.alerts_new == 0
        assert _root_login_hosts(postgres_url) == ["h0", "h1", "h2"]
        mark = first.high_water
        first.close()  # its session ends: the lock is free
        store.append([_root_login(f"h{i}", 10 + i) for i in range(3, 5)])  # type: ignore[misc]
        assert _eventually(second.lead)  # once PostgreSQL has ended the first one's session
        took_over = second.catch_up(store)
        # It resumed from the first engine's high-water mark: what the first evaluated is not
        # evaluated again (no alert twice), the two new logins are (no alert missed).
        size = store.ledger_frontier().size  # the two logins and the alert events they raised
        assert took_over.events == size - 1 - mark
        assert took_over.high_water == size - 1
        assert _root_login_hosts(postgres_url) == [f"h{i}" for i in range(5)]
        assert _no_alert_twice(postgres_url)
    finally:
        second.close()
        store.close()


def _eventually(check: Callable[[], bool], seconds: float = 10) -> bool:
    """``check()`` turning true within ``seconds``: a closed session's advisory locks are
    released when PostgreSQL has ended the backend, a moment after the client hung up."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _root_login_hosts(url: str) -> list[str]:
    with psycopg.connect(url, autocommit=True) as db:
        rows = db.execute(
            "SELECT key FROM alerts WHERE rule_id = 'root-login' ORDER BY key"
        ).fetchall()
    return [json.loads(r[0])["target.host"] for r in rows]


def _no_alert_twice(url: str) -> bool:
    with psycopg.connect(url, autocommit=True) as db:
        row = db.execute(
            "SELECT count(*), count(DISTINCT (rule_id, dedup_key, window_start)) FROM alerts"
        ).fetchone()
    assert row is not None
    return bool(row[0] == row[1] and row[0] > 0)


def test_an_acknowledgement_on_one_server_is_seen_by_all(postgres_url: str, tmp_path: Path) -> None:
    a, b = _shared_dirs(tmp_path)
    store = open_postgres(postgres_url, data_dir=a)
    engine = open_engine(a, store=postgres_url)
    assert engine is not None
    try:
        store.append([_root_login("h1", 1)])  # type: ignore[list-item]
        engine.catch_up(store)
    finally:
        engine.close()
        store.close()
    here, there = open_alerts(a, postgres_url), open_alerts(b, postgres_url)
    try:
        (alert,) = here.list(rule_id="root-login")
        here.transition(alert.id, "acknowledged", by="alice", comment="looking")
        there.transition(alert.id, "resolved", by="bob", comment="maintenance window")
        seen = here.get(alert.id)
        assert seen is not None
        assert seen.status == "resolved"
        assert [(h.status, h.by) for h in seen.history] == [
            ("acknowledged", "alice"),
            ("resolved", "bob"),
        ]
    finally:
        here.close()
        there.close()


def test_one_server_delivers_and_another_takes_over(postgres_url: str, tmp_path: Path) -> None:
    a, b = _shared_dirs(tmp_path)
    first, second = Outbox.open(a, postgres_url), Outbox.open(b, postgres_url)
    try:
        assert first.lead()
        assert not second.lead()
        first.enqueue("soc", "alert-1", "root-login", b"{}", 1)
        assert [d.alert_id for d in second.for_alert("alert-1")] == ["alert-1"]  # one outbox
        first.set_seen_until(50)
        second.set_seen_until(40)  # never moves back
        assert first.seen_until() == 50
        first.close()
        assert _eventually(second.lead)  # once PostgreSQL has ended the first one's session
        assert [d.alert_id for d in second.due(10)] == ["alert-1"]
    finally:
        second.close()


# --- two real servers ---------------------------------------------------------------------


def _document(host: str, offset: int) -> dict[str, object]:
    return to_document(_root_login(host, offset))  # type: ignore[arg-type]


def _holder_pid(url: str, lock: int) -> int | None:
    with psycopg.connect(url, autocommit=True) as db:
        row = db.execute(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted AND l.objid = %s",
            (lock & 0xFFFFFFFF,),
        ).fetchone()
    if row is None or not str(row[0]).startswith(APP_NAME):
        return None
    return int(str(row[0]).rsplit("-", 1)[1])


def _hosts_delivered(rx: HttpReceiver) -> list[str]:
    """Hosts of the root-login alerts delivered, one entry per delivery."""
    alerts = [json.loads(r.body)["alert"] for r in rx.requests]
    return [str(a["key"]["target.host"]) for a in alerts if a["rule_id"] == "root-login"]


def _alert_ids_delivered_once(rx: HttpReceiver) -> bool:
    ids = [json.loads(r.body)["alert"]["id"] for r in rx.requests]
    return len(ids) == len(set(ids))


def _wait_for(rx: HttpReceiver, count: int, servers: list[PgServer], seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while len(_hosts_delivered(rx)) < count:
        logs = "\n".join(s.log.read_text()[-1500:] for s in servers)
        assert time.monotonic() < deadline, f"{_hosts_delivered(rx)}/{count} delivered\n{logs}"
        time.sleep(0.1)


def test_two_servers_raise_and_deliver_each_alert_once(postgres_url: str, tmp_path: Path) -> None:
    dirs = _shared_dirs(tmp_path)
    # One token, made once for the deployment, used against both servers.
    token = keeptrail(
        "tokens", "create", "--name", "lb-clients", "--role", "ingest",
        "--data-dir", str(dirs[0]), "--store", postgres_url,
    ).stdout.strip()  # fmt: skip
    with http_receiver() as rx:
        for d in dirs:
            (d / "keeptrail.toml").write_text(
                f'[[notify.webhook]]\nname = "soc"\nurl = "{rx.url}/hook"\n'
                'secret = "$env:KT_SHARED_SECRET"\n'
            )
        servers = [
            PgServer(postgres_url, d, tmp_path / f"{d.name}.log", env={"KT_SHARED_SECRET": SECRET})
            for d in dirs
        ]
        try:
            for s in servers:
                s.wait_ready()
            # A root login on each of 10 hosts, half through each server.
            for i in range(10):
                servers[i % 2].post([_document(f"h{i:02d}", i)], token)
            _wait_for(rx, 10, servers)
            time.sleep(3)  # room for a duplicate to show up
            assert sorted(_hosts_delivered(rx)) == [f"h{i:02d}" for i in range(10)]
            assert _alert_ids_delivered_once(rx)
            assert all(webhook.verify(SECRET.encode(), r.headers, r.body) for r in rx.requests)

            # Kill the server running the rules; the survivor takes over from its mark.
            leader = _holder_pid(postgres_url, DETECT_LOCK)
            assert leader in {s.proc.pid for s in servers}
            dead = next(s for s in servers if s.proc.pid == leader)
            survivor = next(s for s in servers if s is not dead)
            dead.proc.send_signal(signal.SIGKILL)
            dead.proc.wait(30)
            for i in range(10, 15):
                survivor.post([_document(f"h{i:02d}", i)], token)
            _wait_for(rx, 15, [survivor])
            time.sleep(3)
            assert sorted(_hosts_delivered(rx)) == [f"h{i:02d}" for i in range(15)]
            assert _alert_ids_delivered_once(rx)
            assert _holder_pid(postgres_url, DETECT_LOCK) == survivor.proc.pid
        finally:
            for s in servers:
                s.stop()
    assert _root_login_hosts(postgres_url) == [f"h{i:02d}" for i in range(15)]
    assert _no_alert_twice(postgres_url)
    with psycopg.connect(postgres_url, autocommit=True) as db:
        row = db.execute(
            "SELECT count(*), count(DISTINCT a.id) FROM alerts a"
            " JOIN leaves l ON l.id = CAST(a.event_id AS uuid)"
        ).fetchone()
    assert row is not None
    assert row[0] == row[1] > 0
