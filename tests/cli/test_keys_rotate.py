"""``keeptrail keys rotate`` and ``keys status`` as a user runs them: real processes and files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from keeptrail.protect.kek import master_key_path
from keeptrail.protect.keyring import open_keyring

P1, P2, P3 = "p20240131_default", "p20240201_default", "p20240202_auth"


def kt(
    *args: str, data_dir: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "KEEPTRAIL_DATA_DIR": str(data_dir), "COLUMNS": "1000", **(env or {})}
    full.pop("KEEPTRAIL_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "keeptrail", *args],
        capture_output=True,
        text=True,
        env=full,
        timeout=60,
        check=False,
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The CLI's error: exit 2, a single line on stderr, no traceback."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture
def keyring_dir(tmp_path: Path) -> Path:
    """A data directory whose keyring holds two live data keys and one destroyed."""
    data = tmp_path / "data"
    keyring = open_keyring(data, {})
    assert keyring is not None
    for partition in (P1, P2, P3):
        keyring.data_key(partition)
    keyring.destroy(P3, reason="retention purge")
    keyring.close()
    return data


def test_status_lists_versions_as_table_and_json(keyring_dir: Path) -> None:
    """status shows each version with its provider and counts, in a table and in JSON."""
    table = kt("keys", "status", data_dir=keyring_dir)
    assert table.returncode == 0, table.stderr
    assert "v1 (current)" in table.stdout
    assert "2 live data keys, 1 destroyed" in table.stdout
    out = kt("keys", "status", "--json", data_dir=keyring_dir)
    doc = orjson.loads(out.stdout)
    assert doc["current_version"] == 1
    assert [
        (v["version"], v["provider"], v["live_keys"], v["destroyed_keys"]) for v in doc["versions"]
    ] == [(1, "file", 2, 1)]


def test_rotate_then_old_master_key_is_not_needed(keyring_dir: Path) -> None:
    """rotate re-wraps under v2; with master-v1.key deleted every live key still opens."""
    keyring = open_keyring(keyring_dir, {})
    assert keyring is not None
    before = {p: keyring.existing_key(p) for p in (P1, P2)}
    keyring.close()
    out = kt("keys", "rotate", data_dir=keyring_dir)
    assert out.returncode == 0, out.stderr
    assert "Master key v2 (file) now protects 2 data keys; v1 is retired" in out.stdout
    hint = kt("keys", "status", data_dir=keyring_dir).stdout
    assert "v1 protect no live data key: they can be deleted" in hint
    master_key_path(keyring_dir, 1).unlink()
    keyring = open_keyring(keyring_dir, {})
    assert keyring is not None
    assert {p: keyring.existing_key(p) for p in (P1, P2)} == before
    keyring.close()
    doc = orjson.loads(kt("keys", "status", "--json", data_dir=keyring_dir).stdout)
    got = [
        (v["version"], v["retired"] is None, v["live_keys"], v["present"]) for v in doc["versions"]
    ]
    assert got == [(1, False, 0, False), (2, True, 2, True)]
    again = orjson.loads(kt("keys", "rotate", "--json", data_dir=keyring_dir).stdout)
    assert (again["previous_version"], again["version"], again["rewrapped"]) == (2, 3, 2)


def test_rotate_with_a_wrong_master_key_fails_in_one_line(keyring_dir: Path) -> None:
    """A master key that does not open a data key: exit 2 naming the partition; nothing moved."""
    master_key_path(keyring_dir, 1).write_bytes(os.urandom(32))
    line = one_line_error(kt("keys", "rotate", data_dir=keyring_dir))
    assert line == (
        f"error: cannot decrypt partition {P1}: the master key v1 does not open it (wrong key?)"
    )
    assert not master_key_path(keyring_dir, 2).exists()


def test_rotate_with_a_missing_master_key_file_fails_in_one_line(keyring_dir: Path) -> None:
    """A deleted key file: exit 2 naming the partition and the file to restore."""
    path = master_key_path(keyring_dir, 1)
    path.unlink()
    line = one_line_error(kt("keys", "rotate", data_dir=keyring_dir))
    assert line.startswith(f"error: cannot decrypt partition {P1}: master key v1 is missing: ")
    assert str(path) in line


def test_group_readable_master_key_is_refused(keyring_dir: Path) -> None:
    """A master key file readable by others is refused with the fix."""
    path = master_key_path(keyring_dir, 1)
    path.chmod(0o640)
    line = one_line_error(kt("keys", "rotate", data_dir=keyring_dir))
    assert f"chmod 600 {path}" in line


def test_status_without_a_keyring_says_where_it_looked(tmp_path: Path) -> None:
    """No keyring: one line that names the data directory."""
    line = one_line_error(kt("keys", "status", data_dir=tmp_path / "empty"))
    assert f"no keyring in {tmp_path / 'empty'}" in line


def test_rotate_with_env_provider_from_the_config_file(keyring_dir: Path) -> None:
    """[protect] kek = "env" in keeptrail.toml: rotate moves the keys to the variable's key."""
    (keyring_dir / "keeptrail.toml").write_text('[protect]\nkek = "env"\n')
    hint = kt("keys", "status", data_dir=keyring_dir).stdout
    assert "kek = 'env' but the current master key comes from 'file'" in hint
    missing = one_line_error(kt("keys", "rotate", data_dir=keyring_dir))
    assert "master key v2 is missing: set KEEPTRAIL_MASTER_KEY_2 or KEEPTRAIL_MASTER_KEY" in missing
    key = "q" * 43 + "="
    out = kt("keys", "rotate", data_dir=keyring_dir, env={"KEEPTRAIL_MASTER_KEY": key})
    assert out.returncode == 0, out.stderr
    assert "Master key v2 (env) now protects 2 data keys" in out.stdout
    master_key_path(keyring_dir, 1).unlink()
    doc = orjson.loads(
        kt(
            "keys", "status", "--json", data_dir=keyring_dir, env={"KEEPTRAIL_MASTER_KEY": key}
        ).stdout
    )
    assert [v["provider"] for v in doc["versions"]] == ["file", "env"]


AUTH_LOG = """\
Feb 21 21:54:44 localhost sshd[3402]: Accepted publickey for vagrant from 10.0.2.2 port 63673 ssh2
Feb 21 23:35:33 localhost sudo: vagrant : TTY=pts/0 ; PWD=/home/vagrant ; USER=root ; COMMAND=/usr/bin/cat /srv/rotate-marker
Feb 22 11:47:05 localhost sudo: vagrant : TTY=pts/0 ; PWD=/home/vagrant ; USER=root ; COMMAND=/usr/bin/id
"""  # noqa: E501


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    """A data directory with a real store, filled through ``keeptrail ingest``."""
    log = tmp_path / "auth.log"
    log.write_text(AUTH_LOG)
    os.utime(log, (1_709_000_000, 1_709_000_000))
    data = tmp_path / "data"
    result = kt("ingest", str(log), "--timezone", "UTC", data_dir=data)
    assert result.returncode == 0, result.stderr
    assert (data / "keyring.db").exists()
    return data


def commands(data: Path) -> list[str]:
    out = kt("search", "action:sudo.command", "--format", "jsonl", data_dir=data)
    assert out.returncode == 0, out.stderr
    return sorted(orjson.loads(line)["details"]["command"] for line in out.stdout.splitlines())


def test_store_stays_readable_after_rotation_without_the_old_key(store_dir: Path) -> None:
    """ingest, rotate, delete master-v1.key: search still decrypts; the rotation is audited."""
    assert commands(store_dir) == ["/usr/bin/cat /srv/rotate-marker", "/usr/bin/id"]
    out = kt("keys", "rotate", data_dir=store_dir)
    assert out.returncode == 0, out.stderr
    assert "warning" not in out.stderr
    master_key_path(store_dir, 1).unlink()
    assert commands(store_dir) == ["/usr/bin/cat /srv/rotate-marker", "/usr/bin/id"]
    audit = kt("search", "action:audit.key_rotation", "--format", "jsonl", data_dir=store_dir)
    (doc,) = [orjson.loads(line) for line in audit.stdout.splitlines()]
    assert doc["target"]["resource"] == "v2"
    assert doc["details"]["previous_version"] == 1


def test_store_with_a_wrong_master_key_fails_in_one_line(store_dir: Path) -> None:
    """Searching with another master key: exit 2, one line naming a partition, no garbage."""
    master_key_path(store_dir, 1).write_bytes(os.urandom(32))
    line = one_line_error(kt("search", "action:sudo.command", data_dir=store_dir))
    assert "cannot decrypt partition p202402" in line
    assert "the master key v1 does not open it (wrong key?)" in line


def test_store_with_a_missing_master_key_fails_in_one_line(store_dir: Path) -> None:
    """Searching with master-v1.key gone: exit 2, one line naming partition and file."""
    master_key_path(store_dir, 1).unlink()
    line = one_line_error(kt("search", "action:sudo.command", data_dir=store_dir))
    assert "cannot decrypt partition p202402" in line
    assert "master-v1.key does not exist" in line


def test_a_restored_copy_of_a_shredded_partition_says_when_and_why(store_dir: Path) -> None:
    """events.db copied before its partition's key was destroyed: reading it names the purge."""
    keyring = open_keyring(store_dir, {})
    assert keyring is not None
    keyring.destroy("p20240221_default", reason="retention purge, event 0190-test")
    keyring.close()
    line = one_line_error(kt("search", "action:sudo.command", data_dir=store_dir))
    assert "cannot decrypt partition p20240221_default: its data key was destroyed at " in line
    assert "(retention purge, event 0190-test)" in line


FEB = ("--since", "2024-02-01", "--until", "2024-03-01", "--limit", "100", "--format", "jsonl")


def test_command_provider_runs_once_per_partition_not_per_event(tmp_path: Path) -> None:
    """With kek = "command", a search over many events spawns one unwrap per partition."""
    kms = tmp_path / "kms"
    kms.mkdir()
    helper = Path(__file__).parent.parent / "protect" / "kek_command.py"
    data = tmp_path / "data"
    data.mkdir()
    command = json.dumps([sys.executable, str(helper), str(kms)])  # TOML accepts this array
    (data / "keeptrail.toml").write_text(f'[protect]\nkek = "command"\nkek_command = {command}\n')
    log = tmp_path / "auth.log"
    log.write_text(AUTH_LOG * 20)  # 40 sudo commands over two days
    os.utime(log, (1_709_000_000, 1_709_000_000))
    assert kt("ingest", str(log), "--timezone", "UTC", data_dir=data).returncode == 0
    calls = kms / "calls.log"
    calls.write_text("")
    out = kt("search", "action:sudo.command", *FEB, data_dir=data)
    assert out.returncode == 0, out.stderr
    assert len(out.stdout.splitlines()) == 40
    unwraps = calls.read_text().splitlines()
    assert sorted(unwraps) == [
        "unwrap 1 keeptrail-data-key:p20240221_default:v1",
        "unwrap 1 keeptrail-data-key:p20240222_default:v1",
    ]
    rotated = kt("keys", "rotate", "--json", data_dir=data)
    assert orjson.loads(rotated.stdout)["provider"] == "command"
    (kms / "kms-v1.key").unlink()
    again = kt("search", "action:sudo.command", *FEB, data_dir=data)
    assert len(again.stdout.splitlines()) == 40


@pytest.fixture
def pg_store(postgres_url: str, tmp_path: Path) -> tuple[Path, str]:
    """A PostgreSQL store filled through ``keeptrail ingest --store``; keys in the data dir."""
    log = tmp_path / "auth.log"
    log.write_text(AUTH_LOG)
    os.utime(log, (1_709_000_000, 1_709_000_000))
    data = tmp_path / "data"
    result = kt("ingest", str(log), "--timezone", "UTC", "--store", postgres_url, data_dir=data)
    assert result.returncode == 0, result.stderr
    assert not (data / "keyring.db").exists()  # the data keys live in the database
    return data, postgres_url


def pg_commands(data: Path, url: str) -> list[str]:
    out = kt("search", "action:sudo.command", "--format", "jsonl", "--store", url, data_dir=data)
    assert out.returncode == 0, out.stderr
    return sorted(orjson.loads(line)["details"]["command"] for line in out.stdout.splitlines())


def pg_key_rows(url: str) -> list[tuple[str, int, bytes]]:
    import psycopg  # noqa: PLC0415

    with psycopg.connect(url) as db:
        rows = db.execute(
            "SELECT partition, kek_version, wrapped FROM data_keys ORDER BY partition"
        ).fetchall()
    return [(str(p), int(v), bytes(w)) for p, v, w in rows]


@pytest.mark.postgres
def test_postgres_rotation_rewraps_the_database_keys(pg_store: tuple[Path, str]) -> None:
    """rotate --store: every data key in PostgreSQL moves to v2; v1 can go; search decrypts."""
    data, url = pg_store
    before = pg_key_rows(url)
    partitions = [p for p, _, _ in before]
    assert {p[:9] for p in partitions} >= {"p20240221", "p20240222"}
    assert {v for _, v, _ in before} == {1}
    n = len(before)
    doc = orjson.loads(kt("keys", "status", "--json", "--store", url, data_dir=data).stdout)
    assert (doc["current_version"], doc["live_keys"], doc["destroyed_keys"]) == (1, n, 0)
    assert "***" in doc["path"] or "@" not in doc["path"]  # never the password
    out = kt("keys", "rotate", "--store", url, data_dir=data)
    assert out.returncode == 0, out.stderr
    assert f"Master key v2 (file) now protects {n} data keys; v1 is retired" in out.stdout
    assert "every server sharing this store" in out.stdout
    assert "warning" not in out.stderr
    after = pg_key_rows(url)
    assert [(p, v) for p, v, _ in after] == [(p, 2) for p in partitions]
    assert all(a[2] != b[2] for a, b in zip(after, before, strict=True))
    master_key_path(data, 1).unlink()
    assert pg_commands(data, url) == ["/usr/bin/cat /srv/rotate-marker", "/usr/bin/id"]
    doc = orjson.loads(kt("keys", "status", "--json", "--store", url, data_dir=data).stdout)
    got = [
        (v["version"], v["retired"] is None, v["live_keys"], v["destroyed_keys"], v["present"])
        for v in doc["versions"]
    ]
    assert got == [(1, False, 0, 0, False), (2, True, n, 0, True)]
    assert (doc["current_version"], doc["live_keys"]) == (2, n)
    table = kt("keys", "status", "--store", url, data_dir=data).stdout
    assert "v2 (current)" in table
    assert f"{n} live data keys, 0 destroyed" in table
    audit = kt(
        "search", "action:audit.key_rotation", "--format", "jsonl", "--store", url, data_dir=data
    )
    (event,) = [orjson.loads(line) for line in audit.stdout.splitlines()]
    assert event["target"]["resource"] == "v2"


@pytest.mark.postgres
def test_postgres_server_without_the_new_key_refuses_new_partitions(
    pg_store: tuple[Path, str], tmp_path: Path
) -> None:
    """Another server still holding only master-v1.key: it keeps reading the partitions it has
    cached, refuses (one clear error naming the file) to make a data key after the rotation,
    and works again once keys/master-v2.key is copied over. A restart without it fails at once.
    """
    from keeptrail.errors import UserError  # noqa: PLC0415
    from keeptrail.store.postgres_keys import PgKeyring  # noqa: PLC0415

    data, url = pg_store
    other = tmp_path / "other"
    (other / "keys").mkdir(parents=True, mode=0o700)
    for name in ("ledger.key", "master-v1.key"):
        (other / "keys" / name).write_bytes((data / "keys" / name).read_bytes())
        (other / "keys" / name).chmod(0o600)
    (partition, _, _), *_ = pg_key_rows(url)
    running = PgKeyring(url, other, {}, create=False)
    try:
        cached = running.existing_key(partition)
        assert kt("keys", "rotate", "--store", url, data_dir=data).returncode == 0
        assert running.existing_key(partition) == cached  # data keys do not change
        with pytest.raises(UserError) as refused:
            running.data_key("p20240301_default")
        message = str(refused.value)
        assert "current master key is v2 (file) and this server cannot use it" in message
        assert f"copy {master_key_path(other, 2)} from the server that rotated" in message
        assert {v for _, v, _ in pg_key_rows(url)} == {2}  # nothing wrapped under v1
        assert "p20240301_default" not in [p for p, _, _ in pg_key_rows(url)]
        line = one_line_error(kt("search", "action:sudo.command", "--store", url, data_dir=other))
        assert "master key v2 is missing" in line
        assert "every server sharing the PostgreSQL store needs the same master keys" in line
        master_key_path(other, 2).write_bytes(master_key_path(data, 2).read_bytes())
        master_key_path(other, 2).chmod(0o600)
        new = running.data_key("p20240301_default")
    finally:
        running.close()
    rows = {p: v for p, v, _ in pg_key_rows(url)}
    assert rows["p20240301_default"] == 2
    reopened = PgKeyring(url, data, {}, create=False)
    try:
        assert reopened.existing_key("p20240301_default") == new
    finally:
        reopened.close()


@pytest.mark.postgres
def test_postgres_rotation_with_a_wrong_key_moves_nothing(pg_store: tuple[Path, str]) -> None:
    """A master-v1.key that does not open the database's keys: exit 2 naming a partition, no v2
    in the database, no master-v2.key left behind; a destroyed key is counted, not re-wrapped."""
    from keeptrail.store.postgres_keys import PgKeyring  # noqa: PLC0415

    data, url = pg_store
    before = pg_key_rows(url)
    shredded = before[-1][0]
    keyring = PgKeyring(url, data, {}, create=False)
    keyring.destroy(shredded, reason="retention purge, event test")
    keyring.close()
    good = master_key_path(data, 1).read_bytes()
    master_key_path(data, 1).write_bytes(os.urandom(32))
    line = one_line_error(kt("keys", "rotate", "--store", url, data_dir=data))
    assert line.startswith(f"error: cannot decrypt partition {before[0][0]}: the master key v1")
    assert not master_key_path(data, 2).exists()
    master_key_path(data, 1).write_bytes(good)
    doc = orjson.loads(kt("keys", "status", "--json", "--store", url, data_dir=data).stdout)
    assert (doc["current_version"], doc["live_keys"], doc["destroyed_keys"]) == (
        1,
        len(before) - 1,
        1,
    )
    rotated = orjson.loads(kt("keys", "rotate", "--json", "--store", url, data_dir=data).stdout)
    assert (rotated["version"], rotated["rewrapped"]) == (2, len(before) - 1)
