"""``keeptrail keys rotate --config FILE`` uses FILE for the keyring and for its audit event."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest
from tests.cli.test_keys_rotate import AUTH_LOG, kt

from keeptrail.store import open_store
from keeptrail.store.postgres import open_postgres

# Audit events get their own retention class here; the data directory has no keeptrail.toml,
# so with the shipped defaults they would land in a ``default`` partition.
CONFIG = """
[retention]
default_days = 400

[[retention.policy]]
name = "keyaudit"
days = 3650
category = ["audit"]
"""


def _ingested(tmp_path: Path) -> Path:
    log = tmp_path / "auth.log"
    log.write_text(AUTH_LOG)
    os.utime(log, (1_709_000_000, 1_709_000_000))
    data = tmp_path / "data"
    result = kt("ingest", str(log), "--timezone", "UTC", data_dir=data)
    assert result.returncode == 0, result.stderr
    return data


def _partitions(data: Path, config: Path) -> dict[str, tuple[str, int]]:
    store = open_store(data, readonly=True, config_file=config)
    try:
        return {p.name: (p.retention_class, p.events) for p in store.partitions()}
    finally:
        store.close()


def test_rotation_event_is_stored_with_the_given_config(tmp_path: Path) -> None:
    """The audit.key_rotation event is classified by FILE's retention policies, not the
    data directory's (absent) keeptrail.toml."""
    data = _ingested(tmp_path)
    config = tmp_path / "elsewhere.toml"
    config.write_text(CONFIG)
    before = _partitions(data, config)
    out = kt("keys", "rotate", "--json", "--config", str(config), data_dir=data)
    assert out.returncode == 0, out.stderr
    assert "warning" not in out.stderr
    assert orjson.loads(out.stdout)["version"] == 2
    after = _partitions(data, config)
    new = {name: v for name, v in after.items() if before.get(name) != v}
    assert list(new.values()) == [("keyaudit", 1)]  # one new partition, of FILE's class
    found = kt("search", "action:audit.key_rotation", "-f", "jsonl", data_dir=data)
    (doc,) = [orjson.loads(line) for line in found.stdout.splitlines()]
    assert doc["target"]["resource"] == "v2"


@pytest.mark.postgres
def test_postgres_rotation_event_is_stored_with_the_given_config(
    tmp_path: Path, postgres_url: str
) -> None:
    """With --store postgresql://… too, the audit event follows FILE's retention policies."""
    log = tmp_path / "auth.log"
    log.write_text(AUTH_LOG)
    os.utime(log, (1_709_000_000, 1_709_000_000))
    data = tmp_path / "data"
    store = ("--store", postgres_url)
    assert kt("ingest", str(log), "--timezone", "UTC", *store, data_dir=data).returncode == 0
    config = tmp_path / "elsewhere.toml"
    config.write_text(CONFIG)

    def partitions() -> dict[str, tuple[str, int]]:
        opened = open_postgres(postgres_url, readonly=True, data_dir=data, config_file=config)
        try:
            return {p.name: (p.retention_class, p.events) for p in opened.partitions()}
        finally:
            opened.close()

    before = partitions()
    out = kt("keys", "rotate", "--config", str(config), *store, data_dir=data)
    assert out.returncode == 0, out.stderr
    assert "warning" not in out.stderr
    new = {name: v for name, v in partitions().items() if before.get(name) != v}
    assert list(new.values()) == [("keyaudit", 1)]  # one new partition, of FILE's class
