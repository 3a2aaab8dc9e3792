"""``retention apply`` frees purged partitions' storage after recording the purge;
``retention reclaim`` finishes what ``--no-reclaim`` (or a budget, or a crash) left."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import orjson
import pytest
from tests.cli.test_retention_cli import AUTH_LOG, CONFIG, kt, ok

EXPIRED = {"p20240220_authentication", "p20240221_authentication", "p20240221_unparsed"}


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "data"
    directory.mkdir()
    (directory / "keeptrail.toml").write_text(CONFIG)
    log = tmp_path / "auth.log"
    log.write_text(AUTH_LOG)
    os.utime(log, (1_709_000_000, 1_709_000_000))  # 2024-02-27: the BSD year is 2024
    ok(kt("ingest", str(log), "--timezone", "UTC", "--no-detect", data_dir=directory))
    return directory


def _queued(data: Path) -> set[str]:
    db = sqlite3.connect(data / "events.db")
    try:
        names = db.execute("SELECT name FROM sqlite_master WHERE name LIKE 'reclaim%'")
        return {n.removeprefix("reclaim_") for (n,) in names if n.startswith("reclaim_")}
    finally:
        db.close()


def test_apply_without_reclaim_queues_and_reclaim_frees(data_dir: Path) -> None:
    """--no-reclaim leaves the detached tables (keys gone, verify fine); reclaim drops them."""
    applied = orjson.loads(
        ok(kt("retention", "apply", "--yes", "--json", "--no-reclaim", data_dir=data_dir)).stdout
    )
    assert applied["reclaim"] is None
    assert all(p["key_destroyed"] for p in applied["partitions"])
    assert _queued(data_dir) == EXPIRED
    report = orjson.loads(ok(kt("verify", "--json", data_dir=data_dir)).stdout)
    assert report["ok"] is True
    assert {p["partition"] for p in report["purged"]} == EXPIRED
    gone = ok(kt("search", "category:authentication", "-f", "jsonl", data_dir=data_dir))
    assert gone.stdout == ""
    out = ok(kt("retention", "reclaim", "--json", data_dir=data_dir))
    freed = orjson.loads(out.stdout)
    assert (set(freed["dropped"]), freed["remaining"]) == (EXPIRED, 0)
    assert _queued(data_dir) == set()
    again = ok(kt("retention", "reclaim", data_dir=data_dir))
    assert again.stdout == ""
    assert orjson.loads(ok(kt("verify", "--json", data_dir=data_dir)).stdout)["ok"] is True


def test_apply_reclaims_after_recording_the_purge(data_dir: Path) -> None:
    """By default the storage is freed in the same run, and the output says so."""
    out = ok(kt("retention", "apply", "--yes", data_dir=data_dir))
    assert "Recorded as audit.retention_purge" in out.stdout
    assert "Reclaimed the storage of 3 purged partitions" in out.stdout
    assert _queued(data_dir) == set()
