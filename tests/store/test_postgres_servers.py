"""Several ``keeptrail serve`` processes on one PostgreSQL: one ledger, and fail-over.

Two real server processes on loopback ports ingest concurrently into the same database while
the one holding the integrator lock is killed with SIGKILL mid-way. The client behaves like a
load balancer: what the dead server did not answer is sent again to the survivor (the same
event ids: delivery is idempotent). Afterwards every event is stored exactly once, the leaves
are one contiguous tree, the queue is empty, and ``keeptrail verify`` passes.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psycopg
import pytest
from tests.agent.procs import keeptrail
from tests.factories import make_event
from tests.pg_servers import PgServer

from keeptrail.event import to_document, uuid7
from keeptrail.ledger.keys import create_signer
from keeptrail.protect.kek import FileProvider
from keeptrail.store.integrator import APP_NAME, INTEGRATOR_LOCK

pytestmark = pytest.mark.postgres

BATCHES = 48
PER_BATCH = 200


def integrator_pid(url: str) -> int | None:
    """The OS process whose integrator connection holds the advisory lock now."""
    with psycopg.connect(url, autocommit=True) as db:
        row = db.execute(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted AND l.objid = %s",
            (INTEGRATOR_LOCK & 0xFFFFFFFF,),
        ).fetchone()
    if row is None or not str(row[0]).startswith(APP_NAME):
        return None
    return int(str(row[0]).rsplit("-", 1)[1])


def test_two_servers_one_ledger_survive_killing_the_integrator(
    postgres_url: str, tmp_path: Path
) -> None:
    dirs = [tmp_path / "a", tmp_path / "b"]
    # What an operator does: the first server's keys/ (ledger signing key and master key) is
    # copied to every other server; data keys are shared through the database.
    create_signer(dirs[0], "keeptrail/test/shared")
    FileProvider(dirs[0]).create(1, previous=None)
    for d in dirs[1:]:
        d.mkdir()
        shutil.copytree(dirs[0] / "keys", d / "keys")
    servers = [PgServer(postgres_url, d, tmp_path / f"{d.name}.log") for d in dirs]
    for s in servers:  # tokens are shared through the database: each client its own name
        s.token = keeptrail(
            "tokens", "create", "--name", f"client-{s.data_dir.name}", "--role", "ingest",
            "--data-dir", str(s.data_dir), "--store", postgres_url,
        ).stdout.strip()  # fmt: skip
    try:
        for s in servers:
            s.wait_ready()
        batches = [
            [
                to_document(
                    make_event(id=uuid7(), time=1_700_000_000_000_000 + (b * PER_BATCH + i) * 1000)
                )
                for i in range(PER_BATCH)
            ]
            for b in range(BATCHES)
        ]
        victim_pid = None
        deadline = time.monotonic() + 30
        while victim_pid is None and time.monotonic() < deadline:
            victim_pid = integrator_pid(postgres_url)
            time.sleep(0.1)
        assert victim_pid in {s.proc.pid for s in servers}, "one server must be integrating"
        victim = next(s for s in servers if s.proc.pid == victim_pid)
        survivor = next(s for s in servers if s is not victim)
        stored = [0, 0]
        resent = [0]
        errors: list[BaseException] = []

        def client(n: int, server: PgServer, mine: list[list[dict[str, object]]]) -> None:
            try:
                for batch in mine:
                    try:
                        stored[n] += server.post(batch)
                    except httpx.HTTPError:
                        if server is survivor:
                            raise
                        resent[0] += 1
                        server = survivor  # the load balancer takes the dead one out
                        stored[n] += server.post(batch)
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)

        threads = [
            threading.Thread(target=client, args=(i, s, batches[i::2]))
            for i, s in enumerate(servers)
        ]
        for t in threads:
            t.start()
        # Kill the integrating server once a good part has been answered.
        while sum(stored) < BATCHES * PER_BATCH // 3 and any(t.is_alive() for t in threads):
            time.sleep(0.01)
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait(30)
        for t in threads:
            t.join(900)  # a loaded 2-core CI machine is slow; never check while clients still send
        assert not any(t.is_alive() for t in threads), "clients still sending after 900 s"
        assert not errors, errors
        assert resent[0] >= 1, "the victim's client must have failed over"
        ours = [doc["id"] for batch in batches for doc in batch]
        with psycopg.connect(postgres_url, autocommit=True) as db:
            n, distinct = db.execute(
                "SELECT count(*), count(DISTINCT id) FROM leaves WHERE id = ANY(%s::uuid[])",
                (ours,),
            ).fetchone()  # type: ignore[misc]
            leaves, top = db.execute("SELECT count(*), max(leaf_index) FROM leaves").fetchone()  # type: ignore[misc]
            queued = db.execute("SELECT count(*) FROM ingest_queue").fetchone()[0]  # type: ignore[index]
            rows = db.execute("SELECT count(*) FROM events").fetchone()[0]  # type: ignore[index]
            sizes = [r[0] for r in db.execute("SELECT size FROM checkpoints ORDER BY size")]
        assert (n, distinct) == (len(ours), len(ours))
        assert top == leaves - 1  # one contiguous tree
        assert rows == leaves
        assert queued == 0
        assert sizes[-1] == leaves
        # Fail-over happened: the survivor's integrator loop holds the lock (it retries every
        # 0.5 s; between two of its turns an appender may hold it briefly, so look a few times).
        deadline = time.monotonic() + 30
        while integrator_pid(postgres_url) != survivor.proc.pid and time.monotonic() < deadline:
            time.sleep(0.2)
        assert integrator_pid(postgres_url) == survivor.proc.pid
    finally:
        for s in servers:
            s.stop()
    result = subprocess.run(
        [
            sys.executable, "-m", "keeptrail", "verify", "--no-record",
            "--data-dir", str(dirs[1]), "--store", postgres_url,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "intact" in result.stdout.lower()
