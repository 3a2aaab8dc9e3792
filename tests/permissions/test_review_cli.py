"""Review campaigns end to end through the CLI: real processes, real stores, real ledger."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from tests.permissions.history_gen import History

from keeptrail.permissions.model import Account, Entitlement, Snapshot
from keeptrail.permissions.snapshots import open_snapshots
from keeptrail.store import open_store

DAY = 86_400 * 1_000_000


def kt(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KEEPTRAIL_DATA_DIR": str(data_dir), "COLUMNS": "200"}
    env.pop("KEEPTRAIL_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "keeptrail", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def seed(data_dir: Path, now: int) -> None:
    """One Linux snapshot (3 privileged rights, 1 not) and a little history for alice."""
    system = "linux:web-1"
    snapshot = Snapshot(
        "snap-1",
        system,
        "linux",
        now - DAY,
        (
            Account(system, "alice", "human", uid=1000, shell="/bin/bash"),
            Account(system, "bob", "human", uid=1001, shell="/bin/bash"),
        ),
        (
            Entitlement(system, "alice", "user", "sudo", "ALL", "/etc/sudoers:20 (alice)", True),
            Entitlement(system, "alice", "user", "group:docker", "*", "/etc/group:30", True),
            Entitlement(system, "bob", "user", "sudo", "/usr/bin/reboot", "/etc/sudoers:21", True),
            Entitlement(system, "bob", "user", "group:users", "*", "/etc/group:31", False),
        ),
    )
    with open_snapshots(data_dir) as snapshots:
        snapshots.save(snapshot)
    history = History(now=now)
    history.ssh_login("web-1", "alice", 1)
    history.sudo("web-1", "alice", "/usr/bin/systemctl restart nginx", 1, times=3)
    store = open_store(data_dir)
    try:
        history.write(store)
    finally:
        store.close()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    import time  # noqa: PLC0415

    directory = tmp_path / "data"
    seed(directory, time.time_ns() // 1000)
    return directory


def test_campaign_start_decide_export_verify(data_dir: Path) -> None:
    """Start, decide every item, export with ledger positions, and verify covers the decisions."""
    started = kt(
        "review",
        "start",
        "--scope",
        "system:linux:* AND privileged:true",
        "--reviewer",
        "alice,carol",
        "--name",
        "Q3 privileged",
        "--due",
        "30d",
        data_dir=data_dir,
    )
    assert started.returncode == 0, started.stderr
    campaign = started.stdout.strip()
    assert "3 entitlements" in started.stderr

    shown = orjson.loads(kt("review", "show", campaign, "--json", data_dir=data_dir).stdout)
    assert shown["progress"] == {"total": 3, "decided": 0, "kept": 0, "revoked": 0, "undecided": 3}
    numbers = {(i["principal"], i["privilege"]): i["item"] for i in shown["items"]}
    assert set(numbers) == {("alice", "sudo"), ("alice", "group:docker"), ("bob", "sudo")}

    bob = str(numbers[("bob", "sudo")])
    first = kt(
        "review",
        "decide",
        campaign[:8],
        bob,
        "revoke",
        "-m",
        "left the team",
        "--by",
        "alice",
        data_dir=data_dir,
    )
    assert first.returncode == 0, first.stderr
    assert "1/3 decided" in first.stdout
    for key in (("alice", "sudo"), ("alice", "group:docker")):
        done = kt(
            "review",
            "decide",
            campaign,
            str(numbers[key]),
            "keep",
            "-m",
            "on call",
            "--by",
            "carol",
            data_dir=data_dir,
        )
        assert done.returncode == 0, done.stderr
    assert "campaign closed" in done.stdout

    listed = orjson.loads(kt("review", "list", "--json", data_dir=data_dir).stdout)
    assert listed[0]["state"] == "closed"
    assert listed[0]["progress"]["decided"] == 3

    exported = kt("review", "export", campaign, data_dir=data_dir)
    assert exported.returncode == 0, exported.stderr
    doc = orjson.loads(exported.stdout)
    assert doc["format"] == "keeptrail-access-review/1"
    by_item = {i["item"]: i for i in doc["items"]}
    revoked = by_item[int(bob)]["decision"]
    assert (revoked["decision"], revoked["by"], revoked["comment"]) == (
        "revoke",
        "alice",
        "left the team",
    )
    for item in doc["items"]:
        ledger = item["decision"]["ledger"]
        assert isinstance(ledger["leaf_index"], int)
        assert ledger["checkpoint"]["size"] > ledger["leaf_index"]
    alice_sudo = by_item[numbers[("alice", "sudo")]]["usage"]
    assert alice_sudo["used"][0]["what"] == "/usr/bin/systemctl restart nginx"
    assert alice_sudo["used"][0]["count"] == 3
    assert doc["campaign"]["close_event_ledger"]["leaf_index"] is not None

    rows = list(
        csv.DictReader(
            io.StringIO(
                kt("review", "export", campaign, "--format", "csv", data_dir=data_dir).stdout
            )
        )
    )
    assert sorted(r["decision"] for r in rows) == ["keep", "keep", "revoke"]

    found = kt("search", "action:review.*", "--format", "jsonl", "--limit", "50", data_dir=data_dir)
    actions = sorted(orjson.loads(line)["action"] for line in found.stdout.splitlines())
    assert actions == [
        "review.closed",
        "review.decision",
        "review.decision",
        "review.decision",
        "review.started",
    ]

    verified = kt("verify", "--json", data_dir=data_dir)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    report = orjson.loads(verified.stdout)
    leaves = max(i["leaf_index"] for i in (x["decision"]["ledger"] for x in doc["items"]))
    assert report["ok"] is True
    assert report["size"] > leaves
    assert report["checkpoints_checked"] > 0


def test_bad_decisions_are_one_line_errors(data_dir: Path) -> None:
    """A non-reviewer, no comment, an unknown item or decision: exit 2, one line, no event."""
    campaign = kt(
        "review", "start", "--scope", "principal:bob", "--reviewer", "alice", data_dir=data_dir
    ).stdout.strip()
    cases = [
        (("1", "keep", "-m", "fine", "--by", "mallory"), "not a reviewer"),
        (("1", "keep", "-m", "  ", "--by", "alice"), "needs a comment"),
        (("9", "keep", "-m", "fine", "--by", "alice"), "no item 9"),
        (("1", "maybe", "-m", "fine", "--by", "alice"), "keep or revoke"),
    ]
    for args, message in cases:
        result = kt("review", "decide", campaign, *args, data_dir=data_dir)
        assert result.returncode == 2, result.stderr
        assert message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    shown = orjson.loads(kt("review", "show", campaign, "--json", data_dir=data_dir).stdout)
    assert shown["progress"]["decided"] == 0
    bad_scope = kt(
        "review", "start", "--scope", "colour:blue", "--reviewer", "a", data_dir=data_dir
    )
    assert bad_scope.returncode == 2
    assert "unknown field 'colour'" in bad_scope.stderr
    nothing = kt(
        "review", "start", "--scope", "principal:nobody", "--reviewer", "a", data_dir=data_dir
    )
    assert nothing.returncode == 2
    assert "selects no entitlement" in nothing.stderr


def test_close_by_hand_records_the_undecided(data_dir: Path) -> None:
    """Closing early is an event that says how many items were left undecided."""
    campaign = kt(
        "review", "start", "--scope", "privileged:true", "--reviewer", "alice", data_dir=data_dir
    ).stdout.strip()
    closed = kt("review", "close", campaign, "-m", "quarter ended", data_dir=data_dir)
    assert closed.returncode == 0, closed.stderr
    found = kt("search", "action:review.closed", "--format", "jsonl", data_dir=data_dir)
    event = orjson.loads(found.stdout.splitlines()[0])
    assert event["details"]["undecided"] == 3
    assert event["details"]["comment"] == "quarter ended"
    again = kt(
        "review", "decide", campaign, "1", "keep", "-m", "x", "--by", "alice", data_dir=data_dir
    )
    assert again.returncode == 2
    assert "is closed" in again.stderr
