"""Retention and legal holds from the command line: real processes, real store, real keyring."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

# Two days of February 2024: the 30-day classes below have long expired whatever today is, the
# default class (sudo is `privilege`) is kept a century. 5 authentication events, 1 privilege,
# 1 unparsed.
AUTH_LOG = """\
Feb 20 08:35:22 web-1 sshd[5774]: Failed password for root from 216.160.83.57 port 29160 ssh2
Feb 20 09:00:01 web-1 sshd[5775]: Failed password for alice from 216.160.83.58 port 29161 ssh2
Feb 20 09:10:01 web-1 sshd[5776]: Accepted password for alice from 10.0.0.7 port 29162 ssh2
Feb 20 09:20:01 web-1 sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/cat /etc/shadow
Feb 21 10:00:00 web-1 sshd[6001]: Accepted publickey for bob from 10.0.0.8 port 40000 ssh2
Feb 21 10:05:00 web-1 sshd[6002]: Failed password for bob from 10.0.0.8 port 40001 ssh2
Feb 21 10:06:00 web-1 kernel: something no parser knows about
"""  # noqa: E501

CONFIG = """
[retention]
default_days = 36500

[[retention.policy]]
name = "authentication"
days = 30
category = ["authentication", "session"]

[[retention.policy]]
name = "unparsed"
days = 30
category = ["unparsed"]
"""


def kt(
    *args: str, data_dir: Path, stdin: str | None = None, store: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KEEPTRAIL_DATA_DIR": str(data_dir), "COLUMNS": "200"}
    env.pop("KEEPTRAIL_CONFIG", None)
    env.pop("KEEPTRAIL_STORE", None)
    if store is not None:
        env["KEEPTRAIL_STORE"] = store
    return subprocess.run(
        [sys.executable, "-m", "keeptrail", *args],
        capture_output=True,
        text=True,
        env=env,
        input=stdin,
        timeout=120,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, result.stderr + result.stdout
    return result


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A data directory with CONFIG and AUTH_LOG (year 2024) ingested through the CLI."""
    directory = tmp_path / "data"
    directory.mkdir()
    (directory / "keeptrail.toml").write_text(CONFIG)
    log = tmp_path / "auth.log"
    log.write_text(AUTH_LOG)
    os.utime(log, (1_709_000_000, 1_709_000_000))  # 2024-02-27: the BSD year is 2024
    ok(kt("ingest", str(log), "--timezone", "UTC", "--no-detect", data_dir=directory))
    return directory


def plan_json(data: Path, *extra: str) -> dict[str, object]:
    return orjson.loads(ok(kt("retention", "plan", "--json", *extra, data_dir=data)).stdout)


# --- configuration ------------------------------------------------------------------------------


def test_check_lists_the_shipped_defaults_and_warns_about_pci(tmp_path: Path) -> None:
    """No configuration: the shipped classes are shown and the short ones flagged for PCI DSS."""
    out = ok(kt("retention", "check", data_dir=tmp_path))
    assert "shipped defaults" in out.stdout
    for cls, days in [("authentication", "400"), ("database", "90"), ("unparsed", "30")]:
        assert any(cls in line and days in line for line in out.stdout.splitlines())
    assert "warning: retention class 'database' keeps events 90 days" in out.stderr
    assert "PCI DSS v4.0 requirement 10.5.1" in out.stderr
    assert "'authentication'" not in out.stderr


def test_invalid_policy_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """A configuration mistake names the key; no traceback."""
    (tmp_path / "keeptrail.toml").write_text(
        '[retention]\n[[retention.policy]]\nname = "db"\ndays = 0\ncategory = "database"\n'
    )
    out = kt("retention", "check", data_dir=tmp_path)
    assert out.returncode == 2
    assert "retention policy 'db': days must be between 1 and 36500, got 0" in out.stderr
    assert "Traceback" not in out.stderr
    out = kt("retention", "plan", data_dir=tmp_path)
    assert out.returncode == 2
    assert "days must be between" in out.stderr


# --- plan, apply, holds end to end --------------------------------------------------------------


def test_plan_then_apply_purges_and_verify_reports_the_purge(data: Path) -> None:
    """plan lists the expired classes; apply removes exactly that; verify passes and names
    the purge event; search no longer finds the events."""
    plan = plan_json(data)
    expired = {p["partition"]: p for p in plan["expired"]}  # type: ignore[union-attr]
    assert set(expired) == {
        "p20240220_authentication",
        "p20240221_authentication",
        "p20240221_unparsed",
    }
    assert all(p["policy"] != "default" for p in expired.values())
    assert plan["events_to_remove"] == 6
    out = ok(kt("retention", "apply", "--yes", "--json", "--by", "ops", data_dir=data))
    applied = orjson.loads(out.stdout)
    assert applied["deleted"] == plan["events_to_remove"]
    assert {p["partition"] for p in applied["partitions"]} == set(expired)
    purge_id = applied["purge_event"]
    found = ok(kt("search", "action:audit.retention_purge", "-f", "jsonl", data_dir=data))
    docs = [orjson.loads(line) for line in found.stdout.splitlines()]
    assert [d["id"] for d in docs] == [purge_id]
    assert docs[0]["actor"]["name"] == "ops"
    gone = kt("search", "user:alice AND category:authentication", "-f", "jsonl", data_dir=data)
    assert ok(gone).stdout == ""
    sudo = ok(kt("search", "action:sudo.command", "-f", "jsonl", data_dir=data)).stdout
    assert "alice" in sudo  # privilege is in the default class: kept
    report = orjson.loads(ok(kt("verify", "--json", data_dir=data)).stdout)
    assert report["ok"] is True
    assert {p["partition"] for p in report["purged"]} == set(expired)
    assert {p["purge_event"] for p in report["purged"]} == {purge_id}
    assert plan_json(data)["expired"] == []


def test_apply_without_yes_asks_and_a_no_changes_nothing(data: Path) -> None:
    """Without --yes, apply asks; answering no leaves every partition in place."""
    out = kt("retention", "apply", data_dir=data, stdin="n\n")
    assert out.returncode == 1
    assert "cannot be undone" in out.stderr
    assert len(plan_json(data)["expired"]) == 3  # type: ignore[arg-type]


def test_hold_keeps_events_through_a_purge_until_released(data: Path) -> None:
    """A hold protects its events (readable after the purge); released, they go next run."""
    added = ok(
        kt(
            "hold",
            "add",
            "--query",
            "user:alice",
            "--since",
            "2024-02-20",
            "--until",
            "2024-02-21",
            "--reason",
            "case 4711",
            "--by",
            "legal",
            data_dir=data,
        )
    )
    hold_id = added.stdout.strip()
    listed = orjson.loads(ok(kt("hold", "list", "--json", data_dir=data)).stdout)
    assert [h["id"] for h in listed] == [hold_id]
    assert listed[0]["reason"] == "case 4711"
    plan = plan_json(data)
    held = {p["partition"]: p["holds"] for p in plan["expired"]}  # type: ignore[union-attr]
    assert held["p20240220_authentication"] == [hold_id]
    applied = orjson.loads(ok(kt("retention", "apply", "--yes", "--json", data_dir=data)).stdout)
    assert applied["kept"] == 2  # alice's two ssh events of Feb 20
    alice = ok(kt("search", "user:alice", "-f", "jsonl", data_dir=data)).stdout.splitlines()
    assert {orjson.loads(x)["action"] for x in alice} == {"ssh.login", "sudo.command"}
    assert len(alice) == 3

    released = ok(kt("hold", "release", hold_id, "--reason", "case closed", data_dir=data))
    assert hold_id in released.stdout
    again = kt("hold", "release", hold_id, data_dir=data)
    assert again.returncode == 2
    assert "already released" in again.stderr
    assert orjson.loads(ok(kt("hold", "list", "--json", data_dir=data)).stdout) == []
    everything = orjson.loads(ok(kt("hold", "list", "--all", "--json", data_dir=data)).stdout)
    assert everything[0]["released_at"] is not None
    second = orjson.loads(ok(kt("retention", "apply", "--yes", "--json", data_dir=data)).stdout)
    assert second["deleted"] == 2
    assert [p["state"] for p in second["partitions"]] == ["purged"]
    audit = ok(kt("search", "action:audit.hold_*", "-f", "jsonl", data_dir=data)).stdout
    actions = sorted(orjson.loads(x)["action"] for x in audit.splitlines())
    assert actions == ["audit.hold_add", "audit.hold_release"]


def test_hold_with_an_invalid_query_is_shown_like_search(data: Path) -> None:
    """The same rendering as search: 'invalid query', the query, a caret; exit 2."""
    out = kt("hold", "add", "--query", "user:alice AND (", "--reason", "x", data_dir=data)
    assert out.returncode == 2
    assert "invalid query" in out.stderr
    assert "^" in out.stderr
    assert orjson.loads(ok(kt("hold", "list", "--json", data_dir=data)).stdout) == []


def test_release_of_an_unknown_hold_is_a_clear_error(data: Path) -> None:
    """An id that is not a hold: one line, exit 2."""
    out = kt("hold", "release", "nope", data_dir=data)
    assert out.returncode == 2
    assert "no legal hold 'nope'" in out.stderr


def test_plan_as_of_a_date_and_the_pci_warning(data: Path) -> None:
    """--now moves the clock; a 30-day class is flagged against PCI DSS's 12 months."""
    early = kt("retention", "plan", "--now", "2024-03-01", data_dir=data)
    assert ok(early).stdout.startswith("Nothing has expired")
    assert "retention class 'authentication' keeps events 30 days" in early.stderr
    assert "PCI DSS" in early.stderr
    assert "'default'" not in early.stderr
    bad = kt("retention", "plan", "--now", "yesterday-ish", data_dir=data)
    assert bad.returncode == 2
    assert "--now" in bad.stderr


def test_purged_partition_is_unreadable_in_a_copy_taken_before(data: Path, tmp_path: Path) -> None:
    """A backup of events.db from before the purge, read with today's keyring, names the
    partition whose key is gone instead of showing its events."""
    backup = tmp_path / "backup"
    backup.mkdir()
    src = sqlite3.connect(data / "events.db")
    dst = sqlite3.connect(backup / "events.db")
    src.backup(dst)
    src.close()
    dst.close()
    ok(kt("retention", "apply", "--yes", data_dir=data))
    for name in ("keyring.db", "keeptrail.toml"):
        shutil.copy(data / name, backup / name)
    shutil.copytree(data / "keys", backup / "keys")
    out = kt("search", "user:alice", "--until", "2024-02-21", data_dir=backup)
    assert out.returncode == 2
    assert "cannot decrypt partition p20240220_authentication" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.postgres
def test_holds_and_purges_on_the_postgresql_store(tmp_path: Path, postgres_url: str) -> None:
    """The same commands against a PostgreSQL store: held events stay, the rest goes, verify
    passes and names the purge."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "keeptrail.toml").write_text(CONFIG)
    log = tmp_path / "auth.log"
    log.write_text(AUTH_LOG)
    os.utime(log, (1_709_000_000, 1_709_000_000))

    def pg(*args: str) -> subprocess.CompletedProcess[str]:
        return ok(kt(*args, data_dir=data, store=postgres_url))

    pg("ingest", str(log), "--timezone", "UTC", "--no-detect")
    pg("hold", "add", "--query", "user:alice", "--reason", "case")
    applied = orjson.loads(pg("retention", "apply", "--yes", "--json").stdout)
    assert (applied["deleted"], applied["kept"], applied["keys_destroyed"]) == (4, 2, 2)
    assert len(pg("search", "user:alice", "-f", "jsonl").stdout.splitlines()) == 3
    report = orjson.loads(pg("verify", "--json").stdout)
    assert report["ok"] is True
    assert {p["purge_event"] for p in report["purged"]} == {applied["purge_event"]}
