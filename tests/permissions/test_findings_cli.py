"""``keeptrail permissions findings`` as a user runs it: snapshots, roster, config, output."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from tests.permissions.history_gen import DAY, History

from keeptrail.permissions.findings_config import FindingsConfig
from keeptrail.permissions.model import Account, Entitlement, RosterEntry, Snapshot
from keeptrail.permissions.snapshots import open_snapshots
from keeptrail.store import open_store

WEB = "linux:web-1"
EVIL = "\x1b[2J=cmd|' /C calc'!A0"


def kt(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KEEPTRAIL_DATA_DIR": str(data_dir), "COLUMNS": "250"}
    env.pop("KEEPTRAIL_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "keeptrail", "permissions", "findings", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """Two snapshots a week apart (alice gained wheel), a roster, and alice's history."""
    directory = tmp_path / "data"
    now = time.time_ns() // 1000
    accounts = (
        Account(WEB, "alice", "human", uid=1000, shell="/bin/bash"),
        Account(WEB, EVIL, "human", uid=1001, shell="/bin/bash"),
    )
    base = (
        Entitlement(WEB, "alice", "user", "login", "shell", "/etc/passwd:20", False),
        Entitlement(WEB, EVIL, "user", "login", "shell", "/etc/passwd:21", False),
        Entitlement(WEB, EVIL, "user", "sudo", "/usr/bin/id", "/etc/sudoers:9", True),
    )
    wheel = Entitlement(WEB, "alice", "user", "group:wheel", "*", "/etc/group:10", True)
    with open_snapshots(directory) as snapshots:
        snapshots.save(Snapshot("s-old", WEB, "linux", now - 120 * DAY, accounts, base))
        snapshots.save(Snapshot("s-new", WEB, "linux", now - DAY, accounts, (*base, wheel)))
        snapshots.import_roster([RosterEntry("e1", True, "alice@example.com")], source="hr.csv")
    history = History(now=now)
    history.ssh_login("web-1", "alice", 2)
    history.ssh_login("web-1", EVIL, 40)
    store = open_store(directory)
    try:
        history.write(store)
    finally:
        store.close()
    (directory / "keeptrail.toml").write_text("[permissions.findings]\ndormant_days = 30\n")
    return directory


def test_json_kinds_and_config(data_dir: Path) -> None:
    """dormant_days from the config file makes the 40-day-idle privileged account dormant."""
    result = kt("--format", "json", data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    found = orjson.loads(result.stdout)
    kinds = sorted((f["kind"], f["principal"]) for f in found)
    assert kinds == sorted(
        [
            ("privileged_account", "alice"),
            ("privileged_account", EVIL),
            ("dormant_privileged", EVIL),
            ("unused_privilege", EVIL),
            ("orphaned_account", EVIL),
            ("drift", "alice"),
        ]
    )
    drift = next(f for f in found if f["kind"] == "drift")
    assert [e["ref"] for e in drift["evidence"] if e["kind"] == "snapshot"] == ["s-old", "s-new"]
    only = orjson.loads(kt("--format", "json", "--kind", "drift", data_dir=data_dir).stdout)
    assert [f["kind"] for f in only] == ["drift"]
    none = orjson.loads(kt("--format", "json", "--system", "k8s:*", data_dir=data_dir).stdout)
    assert none == []
    wider = orjson.loads(
        kt(
            "--format", "json", "--window", "1d", "--kind", "unused_privilege", data_dir=data_dir
        ).stdout
    )
    assert wider == []  # nothing at all in the last day: no coverage, no usage findings


def test_hostile_names_are_neutralised(data_dir: Path) -> None:
    """An account name with escapes and a formula is escaped in tables and quoted in CSV."""
    table = kt(data_dir=data_dir)
    assert table.returncode == 0, table.stderr
    assert "\x1b" not in table.stdout
    assert "\\x1b[2J" in table.stdout
    rows = list(csv.DictReader(io.StringIO(kt("--format", "csv", data_dir=data_dir).stdout)))
    principals = {r["principal"] for r in rows}
    # ESC[2J is stripped by some writers, uncovering the '=': the cell is quoted all the same.
    assert "'" + EVIL in principals
    assert all(not r["principal"].startswith("=") for r in rows)


def test_bad_options_are_one_line_errors(data_dir: Path) -> None:
    """An unknown kind, format or config key ends with one line and status 2."""
    for args, message in (
        (("--kind", "nope"), "unknown finding kind 'nope'"),
        (("--format", "xml"), "--format must be one of"),
        (("--window", "soon"), "window"),
    ):
        result = kt(*args, data_dir=data_dir)
        assert result.returncode == 2, result.stderr
        assert message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    (data_dir / "keeptrail.toml").write_text("[permissions.findings]\ndormant_dayz = 3\n")
    result = kt(data_dir=data_dir)
    assert result.returncode == 2
    assert "unknown key(s) dormant_dayz" in result.stderr


def test_config_table_validation() -> None:
    """Each threshold is checked; system event filters must be valid queries."""
    config = FindingsConfig.from_config(
        {
            "permissions": {
                "findings": {
                    "window": "30d",
                    "generic_names": ["svc"],
                    "events": {"k8s:prod": "target.host:api-1"},
                }
            }
        }
    )
    assert config.window_us == 30 * DAY
    assert config.generic_names == frozenset({"svc"})
    from keeptrail.errors import UserError  # noqa: PLC0415

    for bad in ({"scan_limit": 0}, {"generic_names": "root"}, {"events": {"x": "a:(b"}}):
        with pytest.raises(UserError):
            FindingsConfig.from_config({"permissions": {"findings": bad}})
