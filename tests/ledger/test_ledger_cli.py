"""The ledger commands end to end: real processes on a real data directory."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

LOG = """\
Feb 21 21:54:44 localhost sshd[3402]: Accepted password for vagrant from 10.0.2.2 port 63673 ssh2
Feb 20 08:35:22 slave22 sshd[5774]: Failed password for root from 216.160.83.57 port 29160 ssh2
Feb 21 23:35:33 localhost sudo: vagrant : TTY=pts/0 ; PWD=/home/vagrant ; USER=root ; COMMAND=/bin/ls
"""  # noqa: E501


def kt(
    *args: str, data: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "KEEPTRAIL_DATA_DIR": str(data), "COLUMNS": "200", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "keeptrail", *args],
        capture_output=True,
        text=True,
        env=full,
        timeout=60,
        check=False,
    )


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A data directory with three lines ingested and checkpoints published to a log."""
    log = tmp_path / "auth.log"
    log.write_text(LOG)
    data = tmp_path / "data"
    env = {"KEEPTRAIL_CHECKPOINT_LOG": str(tmp_path / "checkpoints.log")}
    out = kt("ingest", str(log), "--timezone", "UTC", data=data, env=env)
    assert out.returncode == 0, out.stderr
    return data


def test_key_file_is_private_and_keys_public_prints_the_verifier(data: Path) -> None:
    """The signing key file is mode 0600 in a 0700 directory; keys public prints only the vkey."""
    key = data / "keys" / "ledger.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
    out = kt("keys", "public", data=data)
    assert out.returncode == 0, out.stderr
    vkey = out.stdout.strip()
    assert vkey.startswith("keeptrail/")
    assert vkey.count("+") >= 2
    assert "PRIVATE" not in out.stdout
    assert key.read_text().split("+")[4].strip() not in out.stdout


def test_checkpoint_prints_the_latest_signed_note(data: Path, tmp_path: Path) -> None:
    """checkpoint prints a signed C2SP checkpoint, the same one published to the log file."""
    out = kt("checkpoint", data=data)
    assert out.returncode == 0, out.stderr
    origin, size, _root, blank, sig = out.stdout.splitlines()[:5]
    assert origin.startswith("keeptrail/")
    db = sqlite3.connect(data / "events.db")
    (leaves,) = db.execute("SELECT count(*) FROM leaves").fetchone()
    db.close()
    assert int(size) == leaves >= 4  # three lines, the key event (and any detection alerts)
    assert blank == ""
    assert sig.startswith("\u2014 " + origin)
    assert (tmp_path / "checkpoints.log").read_text().endswith(out.stdout + "\n")


def test_verify_exit_codes_and_json(data: Path, tmp_path: Path) -> None:
    """verify exits 0 on an intact store and 1 with the damaged leaf named after raw SQL edits."""
    ok = kt("verify", "--json", "--checkpoint", str(tmp_path / "checkpoints.log"), data=data)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert orjson.loads(ok.stdout)["ok"] is True
    db = sqlite3.connect(data / "events.db")
    (table,) = db.execute("SELECT partition FROM leaves WHERE leaf_index = 2").fetchone()
    db.execute(f"UPDATE \"{table}\" SET actor_name = 'nobody' WHERE leaf_index = 2")
    db.commit()
    db.close()
    bad = kt("verify", "--json", data=data)
    assert bad.returncode == 1
    first = orjson.loads(bad.stdout)["first"]
    assert (first["kind"], first["leaf_index"]) == ("modified", 2)
    human = kt("verify", data=data)
    assert human.returncode == 1
    assert "first affected: leaf 2" in human.stdout


def test_verify_records_its_runs_as_events(data: Path) -> None:
    """Each verify run is stored as a ledger.verified audit event."""
    assert kt("verify", data=data).returncode == 0
    out = kt("search", "action:ledger.verified", "-f", "jsonl", data=data)
    docs = [orjson.loads(line) for line in out.stdout.splitlines()]
    assert [d["outcome"] for d in docs] == ["success"]


def test_prove_and_verify_proof_round_trip_with_only_the_verifier_key(
    data: Path, tmp_path: Path
) -> None:
    """A bundle from prove checks out with just the vkey, and fails once its event is edited."""
    vkey = kt("keys", "public", data=data).stdout.strip()
    found = kt("search", "user:root", "-f", "jsonl", data=data).stdout.splitlines()
    event_id = orjson.loads(found[0])["id"]
    bundle = tmp_path / "proof.json"
    assert kt("prove", event_id, "-o", str(bundle), data=data).returncode == 0
    elsewhere = tmp_path / "auditor"  # no store at all on the auditor's side
    ok = kt("verify-proof", str(bundle), "--key", vkey, data=elsewhere)
    assert ok.returncode == 0, ok.stderr
    assert event_id in ok.stdout
    doc = orjson.loads(bundle.read_bytes())
    doc["event"]["actor"]["name"] = "someone-else"
    bundle.write_bytes(orjson.dumps(doc))
    assert kt("verify-proof", str(bundle), "--key", vkey, data=elsewhere).returncode == 1
    other = tmp_path / "other"
    kt("ingest", "-", data=other)
    foreign = kt("keys", "public", data=other).stdout.strip()
    doc["event"]["actor"]["name"] = "root"
    bundle.write_bytes(orjson.dumps(doc))
    assert kt("verify-proof", str(bundle), "--key", vkey, data=elsewhere).returncode == 0
    assert kt("verify-proof", str(bundle), "--key", foreign, data=elsewhere).returncode == 1


def test_consistency_proof_round_trip(data: Path, tmp_path: Path) -> None:
    """prove --consistency between two signed sizes checks out with verify-proof."""
    vkey = kt("keys", "public", data=data).stdout.strip()
    kt("verify", data=data)  # records an event: a second checkpoint, at size 5
    bundle = tmp_path / "consistency.json"
    out = kt("prove", "--consistency", "1", "5", "-o", str(bundle), data=data)
    assert out.returncode == 0, out.stderr
    ok = kt("verify-proof", str(bundle), "--key", vkey, data=data)
    assert ok.returncode == 0, ok.stderr
    assert "prefix" in ok.stdout


def test_checkpoints_published_to_a_directory_catch_a_rollback(tmp_path: Path) -> None:
    """--publish-checkpoints DIR writes one file per checkpoint, and verify reads the folder."""
    data, published = tmp_path / "data", tmp_path / "published"
    published.mkdir()
    first, second = tmp_path / "a.log", tmp_path / "b.log"
    first.write_text(LOG)
    second.write_text(LOG.replace("vagrant", "alice"))
    assert (
        kt("ingest", str(first), "--publish-checkpoints", str(published), data=data).returncode == 0
    )
    old_copy = (data / "events.db").read_bytes()
    assert (
        kt("ingest", str(second), "--publish-checkpoints", str(published), data=data).returncode
        == 0
    )
    assert len(list(published.glob("*.checkpoint"))) >= 2
    intact = kt("verify", "--checkpoint", str(published), "--no-record", data=data)
    assert intact.returncode == 0, intact.stdout + intact.stderr
    for suffix in ("-wal", "-shm"):
        (data / f"events.db{suffix}").unlink(missing_ok=True)
    (data / "events.db").write_bytes(old_copy)
    rolled = kt("verify", "--checkpoint", str(published), "--no-record", data=data)
    assert rolled.returncode == 1
    assert "roll" in (rolled.stdout + rolled.stderr).lower()
