"""``keeptrail migrate``: an embedded store moves into PostgreSQL with every event and root."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from tests.factories import make_event

from keeptrail.event import canonical_bytes, uuid7
from keeptrail.ingest import Ingestor
from keeptrail.query.parse import parse
from keeptrail.store import open_store
from keeptrail.store.contract import Hold
from keeptrail.store.postgres import open_postgres

pytestmark = pytest.mark.postgres
SAMPLE = Path(__file__).parents[2] / "src" / "keeptrail" / "samples" / "auth.log"
DAY = 86_400_000_000
T0 = 1_700_006_400_000_000  # 2023-11-15


def run_migrate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keeptrail", "migrate", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_migration_keeps_every_event_root_position_hold_and_key(
    postgres_url: str, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    store = open_store(data)  # the default embedded store: sealed partitions, real keyring
    Ingestor(store).ingest_file(SAMPLE)
    for d in range(3):
        store.append([make_event(time=T0 + d * DAY + i * 1_000_000) for i in range(20)])
    purge_id = uuid7()
    store.add_hold(
        Hold(id="h1", query=None, since=T0 + DAY, until=T0 + DAY + 5_000_000,
             reason="case", created_by="legal", created_at=1)
    )  # fmt: skip
    by_day = {p.day: p.name for p in store.partitions()}
    whole = store.purge_partition(by_day[20231115], holds=store.holds(), purge_event_id=purge_id)
    held = store.purge_partition(by_day[20231116], holds=store.holds(), purge_event_id=purge_id)
    assert (whole.state, held.state, held.kept) == ("purged", "partial", 5)
    store.append([make_event(id=purge_id, time=T0 + 9 * DAY, category="audit", action="a.b")])
    before = {e.id: canonical_bytes(e) for e in store.search(None, limit=10_000).events}
    checkpoints = [(cp.size, cp.root) for cp in store.checkpoints()]
    positions = store.file_position(str(SAMPLE.resolve()))
    partitions = store.partitions()
    store.close()
    assert positions is not None
    assert any(p.sealed for p in partitions)

    result = run_migrate("--from", f"sqlite:///{data / 'events.db'}", "--to", postgres_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"roots:          {len(checkpoints)} of {len(checkpoints)}" in result.stdout
    assert "verify:         intact" in result.stdout
    assert checkpoints[-1][1].hex() in result.stdout

    pg = open_postgres(postgres_url, data_dir=data)
    try:
        after = {e.id: canonical_bytes(e) for e in pg.search(None, limit=10_000).events}
        assert after == before  # every event, byte for byte (the purged ones stay purged)
        assert [(cp.size, cp.root) for cp in pg.checkpoints()] == checkpoints
        assert pg.file_position(str(SAMPLE.resolve())) == positions
        assert [h.id for h in pg.holds()] == ["h1"]
        assert pg.partitions() == partitions
        assert [e.id for e in pg.search(parse("failed"), limit=3).events]
        # The migrated store keeps growing the same signed history.
        late = make_event(time=T0 + 10 * DAY)
        assert pg.append([late]) == 1
        assert pg.latest_checkpoint().size == checkpoints[-1][0] + 1  # type: ignore[union-attr]
    finally:
        pg.close()

    again = run_migrate("--from", f"sqlite:///{data / 'events.db'}", "--to", postgres_url)
    assert again.returncode == 2
    assert "not empty" in again.stderr


def test_migration_refuses_a_missing_source(postgres_url: str, tmp_path: Path) -> None:
    result = run_migrate("--from", f"sqlite:///{tmp_path}/nothing.db", "--to", postgres_url)
    assert result.returncode == 2
    assert "no SQLite store" in result.stderr
    with psycopg.connect(postgres_url) as db:
        assert db.execute(
            "SELECT count(*) FROM pg_tables WHERE tablename = 'leaves'"
        ).fetchone() == (0,)
