"""``keeptrail verify`` names purged partitions whose storage still awaits ``retention reclaim``."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import orjson
import pytest
from tests.cli.test_retention_cli import AUTH_LOG, CONFIG, kt, ok

EXPIRED = ["p20240220_authentication", "p20240221_authentication", "p20240221_unparsed"]


def _ingested(tmp_path: Path, store: str | None = None) -> Path:
    directory = tmp_path / "data"
    directory.mkdir()
    (directory / "keeptrail.toml").write_text(CONFIG)
    log = tmp_path / "auth.log"
    log.write_text(AUTH_LOG)
    os.utime(log, (1_709_000_000, 1_709_000_000))  # 2024-02-27: the BSD year is 2024
    ok(kt("ingest", str(log), "--timezone", "UTC", "--no-detect", data_dir=directory, store=store))
    return directory


def test_verify_lists_partitions_awaiting_reclaim_until_reclaimed(tmp_path: Path) -> None:
    """After a purge with --no-reclaim, verify (human and JSON) names each detached partition
    and suggests reclaim, without calling it damage; after reclaim it names none."""
    data = _ingested(tmp_path)
    ok(kt("retention", "apply", "--yes", "--no-reclaim", data_dir=data))
    report = orjson.loads(ok(kt("verify", "--json", "--no-record", data_dir=data)).stdout)
    assert report["ok"] is True
    assert report["awaiting_reclaim"] == EXPIRED
    human = ok(kt("verify", "--no-record", data_dir=data)).stdout
    assert "Ledger intact" in human
    lines = human.splitlines()
    (at,) = [i for i, ln in enumerate(lines) if "await reclaim" in ln]
    assert lines[at].startswith("3 purged partitions await reclaim")
    assert lines[at].endswith(": " + ", ".join(EXPIRED))
    assert lines[at + 1] == "  run `keeptrail retention reclaim` to free it"

    ok(kt("retention", "reclaim", data_dir=data))
    after = orjson.loads(ok(kt("verify", "--json", "--no-record", data_dir=data)).stdout)
    assert (after["ok"], after["awaiting_reclaim"]) == (True, [])
    assert {p["partition"] for p in after["purged"]} == set(EXPIRED)  # still reported as purged
    assert "reclaim" not in ok(kt("verify", "--no-record", data_dir=data)).stdout


def test_verify_without_purges_says_nothing_about_reclaim(tmp_path: Path) -> None:
    """A store that never purged: an empty list in JSON and no line in the human report."""
    data = _ingested(tmp_path)
    report = orjson.loads(ok(kt("verify", "--json", "--no-record", data_dir=data)).stdout)
    assert report["awaiting_reclaim"] == []
    assert "reclaim" not in ok(kt("verify", "--no-record", data_dir=data)).stdout


@pytest.mark.postgres
def test_verify_on_postgresql_has_nothing_awaiting_reclaim(
    tmp_path: Path, postgres_url: str
) -> None:
    """PostgreSQL frees a purged partition's table at once: verify reports none waiting."""
    data = _ingested(tmp_path, store=postgres_url)

    def pg(*args: str) -> subprocess.CompletedProcess[str]:
        return ok(kt(*args, data_dir=data, store=postgres_url))

    applied = orjson.loads(pg("retention", "apply", "--yes", "--json", "--no-reclaim").stdout)
    assert applied["keys_destroyed"] == 3
    report = orjson.loads(pg("verify", "--json", "--no-record").stdout)
    assert (report["ok"], report["awaiting_reclaim"]) == (True, [])
    assert {p["partition"] for p in report["purged"]} == set(EXPIRED)
    assert "reclaim" not in pg("verify", "--no-record").stdout
