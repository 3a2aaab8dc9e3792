"""PostgreSQL-specific behaviour: partitions as tables, pruning, the integrator lock, keys, CLI."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psycopg
import pytest
from tests.factories import make_event
from typer.testing import CliRunner

from keeptrail.cli.main import app
from keeptrail.errors import UserError
from keeptrail.event import uuid7
from keeptrail.ledger.note import generate_signer
from keeptrail.ledger.verify import verify_ledger
from keeptrail.query.parse import parse
from keeptrail.server.settings import load_settings, redact_url
from keeptrail.store.integrator import try_lock
from keeptrail.store.postgres import PostgresStore

pytestmark = pytest.mark.postgres
DAY = 86_400_000_000
T0 = 1_700_006_400_000_000  # 2023-11-15T00:00:00Z
SAMPLE = Path(__file__).parents[2] / "src" / "keeptrail" / "samples" / "auth.log"


def tables(url: str) -> set[str]:
    with psycopg.connect(url) as db:
        return {
            r[0]
            for r in db.execute("SELECT tablename FROM pg_tables WHERE tablename ~ '^[pd][0-9]'")
        }


@pytest.fixture
def pg(postgres_url: str, tmp_path: Path) -> PostgresStore:
    store = PostgresStore(postgres_url, data_dir=tmp_path, signer=generate_signer("kt/test/0"))
    yield store  # type: ignore[misc]
    store.close()


def test_days_are_range_partitions_and_searches_touch_only_their_days(
    pg: PostgresStore, postgres_url: str
) -> None:
    pg.append(
        [make_event(time=T0 + d * DAY + i, actor_name="alice") for d in range(5) for i in range(3)]
    )
    assert {f"d2023111{5 + d}" for d in range(5)} <= tables(postgres_url)
    plan = "\n".join(pg.explain(parse("user:alice"), since=T0 + DAY, until=T0 + 2 * DAY))
    assert "p20231116_default" in plan
    for other in ("p20231115_default", "p20231117_default", "p20231119_default"):
        assert other not in plan  # pruned at plan time
    assert "Index" in plan


def test_purge_drops_the_partition_table(pg: PostgresStore, postgres_url: str) -> None:
    pg.append([make_event(time=T0 + d * DAY) for d in range(2)])
    pg.purge_partition("p20231115_default", holds=[], purge_event_id=uuid7())
    assert "p20231115_default" not in tables(postgres_url)
    assert "p20231116_default" in tables(postgres_url)


def test_append_waits_for_the_integrator_and_takes_over_when_it_dies(
    postgres_url: str, tmp_path: Path
) -> None:
    """While another session holds the integrator lock the append waits; when that session
    ends (its process died), the appender integrates the queue itself."""
    store = PostgresStore(
        postgres_url, data_dir=tmp_path, signer=generate_signer("kt/test/0"), integrator=False
    )
    try:
        holder = psycopg.connect(postgres_url, autocommit=True)
        assert try_lock(holder)
        done: list[int] = []
        worker = threading.Thread(target=lambda: done.append(store.append([make_event()])))
        worker.start()
        time.sleep(1.0)
        assert worker.is_alive(), "the append must wait until its events are integrated"
        with psycopg.connect(postgres_url) as db:
            assert db.execute("SELECT count(*) FROM ingest_queue").fetchone() == (1,)
        holder.close()  # the integrator's session ends: its lock is released
        worker.join(10)
        assert done == [1]
        assert store.count() == 1
    finally:
        store.close()


def test_queued_events_are_durable_when_integration_times_out(
    postgres_url: str, tmp_path: Path
) -> None:
    """A bounded wait: the append says so, and the queued batch is integrated later."""
    signer = generate_signer("kt/test/0")
    store = PostgresStore(
        postgres_url, data_dir=tmp_path, signer=signer, integrator=False, wait_timeout=0.5
    )
    holder = psycopg.connect(postgres_url, autocommit=True)
    try:
        assert try_lock(holder)
        event = make_event()
        with pytest.raises(UserError, match="not integrated within"):
            store.append([event])
        holder.close()
        assert store.append([make_event()]) == 1  # integrates the older batch too
        assert store.get(event.id) is not None
        assert verify_ledger(store, signer.verifier()).ok
    finally:
        store.close()


def test_a_server_with_another_ledger_key_refuses_to_start(
    postgres_url: str, tmp_path: Path
) -> None:
    first = PostgresStore(postgres_url, data_dir=tmp_path / "a")
    first.append([make_event()])
    first.close()
    with pytest.raises(UserError, match="there is no key at"):
        PostgresStore(postgres_url, data_dir=tmp_path / "b")
    with pytest.raises(UserError, match="not this ledger's signer"):
        PostgresStore(postgres_url, data_dir=tmp_path / "c", signer=generate_signer("kt/x/1"))


def test_cli_ingest_search_stats_verify_with_store_url(postgres_url: str, tmp_path: Path) -> None:
    runner = CliRunner()
    base = ["--data-dir", str(tmp_path), "--store", postgres_url]
    result = runner.invoke(app, ["ingest", str(SAMPLE), "--no-detect", *base])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["search", "user:root", "--format", "jsonl", *base])
    assert result.exit_code == 0, result.output
    assert '"name":"root"' in result.output
    result = runner.invoke(app, ["stats", "--json", *base])
    assert result.exit_code == 0, result.output
    assert '"total": 67' in result.output or '"total":67' in result.output
    result = runner.invoke(app, ["verify", *base])
    assert result.exit_code == 0, result.output
    assert "intact" in result.output.lower()


def test_store_urls_are_shown_without_their_password(tmp_path: Path) -> None:
    assert redact_url("postgresql://kt:s3cret@db:5432/kt") == "postgresql://kt:***@db:5432/kt"
    assert redact_url("postgresql://kt@db/kt") == "postgresql://kt@db/kt"
    config = tmp_path / "keeptrail.toml"
    config.write_text('[server]\nstore = "postgresql://kt:s3cret@db/kt"\n')
    settings = load_settings(config, env={})
    assert settings.store == "postgresql://kt:s3cret@db/kt"
    assert settings.summary()["store"] == "postgresql://kt:***@db/kt"
    assert load_settings(config, env={"KEEPTRAIL_STORE": "postgresql://x@h/d"}).store == (
        "postgresql://x@h/d"
    )


def test_checkpoints_are_published_by_whoever_integrates(postgres_url: str, tmp_path: Path) -> None:
    """With the background integrator and with an appender integrating itself, every signed
    checkpoint reaches the checkpoint log (append_checkpoint's file)."""
    from keeptrail.ledger.publish import Publisher, read_checkpoint_log  # noqa: PLC0415

    log = tmp_path / "checkpoints.log"
    signer = generate_signer("kt/test/0")
    for background in (True, False):
        store = PostgresStore(
            postgres_url, data_dir=tmp_path, signer=signer, publisher=Publisher(log),
            integrator=background,
        )  # fmt: skip
        try:
            for _ in range(3):
                store.append([make_event()])
        finally:
            store.close()
    sizes = [int(note.split("\n")[1]) for note in read_checkpoint_log(log.read_text())]
    assert sizes == [1, 2, 3, 4, 5, 6]
