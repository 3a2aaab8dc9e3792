"""The keyring: data keys per partition, rotation, crypto-shredding, clear errors."""

from __future__ import annotations

import base64
import os
import sqlite3
import stat
import sys
import threading
from pathlib import Path

import pytest
from tests.factories import make_event

from keeptrail.errors import UserError
from keeptrail.ledger.note import generate_signer
from keeptrail.protect.kek import KekConfig, Providers, master_key_path
from keeptrail.protect.keyring import Keyring, KeyUnavailable, keyring_at, open_keyring
from keeptrail.query.parse import parse
from keeptrail.store.sqlite import SQLiteStore

HELPER = Path(__file__).with_name("kek_command.py")
P1, P2 = "p20240131_default", "p20240201_auth"


def opened(data: Path, **protect: object) -> Keyring:
    keyring = open_keyring(data, {"protect": protect})
    assert keyring is not None
    return keyring


def command_config(tmp_path: Path) -> dict[str, object]:
    keydir = tmp_path / "kms"
    keydir.mkdir(exist_ok=True)
    return {"kek": "command", "kek_command": [sys.executable, str(HELPER), str(keydir)]}


def test_first_open_creates_a_private_keyring_and_master_key(tmp_path: Path) -> None:
    """keyring.db is 0600 and master key v1 exists after the first open."""
    keyring = opened(tmp_path)
    keyring.close()
    assert stat.S_IMODE((tmp_path / "keyring.db").stat().st_mode) == 0o600
    assert master_key_path(tmp_path, 1).stat().st_size == 32
    status = keyring_at(tmp_path, {}).status()
    assert [(v.version, v.provider, v.retired_at) for v in status.versions] == [(1, "file", None)]


def test_encryption_off_means_no_keyring(tmp_path: Path) -> None:
    """[protect] encrypt = false returns no keyring and creates nothing."""
    assert open_keyring(tmp_path, {"protect": {"encrypt": False}}) is None
    assert not (tmp_path / "keyring.db").exists()
    with pytest.raises(UserError, match="encrypt must be true or false"):
        open_keyring(tmp_path, {"protect": {"encrypt": "no"}})
    with pytest.raises(UserError, match="no keyring in"):
        keyring_at(tmp_path, {})


def test_data_keys_are_random_per_partition_and_stable(tmp_path: Path) -> None:
    """Each partition gets its own 32-byte key, the same one after reopening."""
    keyring = opened(tmp_path)
    k1, k2 = keyring.data_key(P1), keyring.data_key(P2)
    assert len(k1) == len(k2) == 32
    assert k1 != k2
    keyring.close()
    again = opened(tmp_path)
    assert again.existing_key(P1) == k1
    assert again.data_key(P2) == k2
    again.close()


def test_existing_key_for_an_unknown_partition_names_it(tmp_path: Path) -> None:
    """Asking for a key that was never made is a KeyUnavailable naming the partition."""
    keyring = opened(tmp_path)
    with pytest.raises(KeyUnavailable, match=f"cannot decrypt partition {P1}: the keyring") as info:
        keyring.existing_key(P1)
    assert info.value.partition == P1
    keyring.close()


def test_a_wrapped_key_moved_to_another_partition_does_not_open(tmp_path: Path) -> None:
    """Copying one partition's wrapped key onto another's row fails authentication."""
    keyring = opened(tmp_path)
    keyring.data_key(P1)
    keyring.data_key(P2)
    keyring.close()
    with sqlite3.connect(tmp_path / "keyring.db") as db:
        db.execute(
            "UPDATE data_keys SET wrapped = (SELECT wrapped FROM data_keys WHERE partition = ?)"
            " WHERE partition = ?",
            (P1, P2),
        )
    keyring = opened(tmp_path)
    with pytest.raises(KeyUnavailable, match=f"{P2}: the master key v1 does not open it"):
        keyring.existing_key(P2)
    keyring.close()


def test_wrong_master_key_is_a_clear_error(tmp_path: Path) -> None:
    """Another key in master-v1.key: the error names the partition and suspects the key."""
    keyring = opened(tmp_path)
    keyring.data_key(P1)
    keyring.close()
    master_key_path(tmp_path, 1).write_bytes(os.urandom(32))
    keyring = opened(tmp_path)
    with pytest.raises(KeyUnavailable) as info:
        keyring.existing_key(P1)
    assert str(info.value) == (
        f"cannot decrypt partition {P1}: the master key v1 does not open it (wrong key?)"
    )
    keyring.close()


def test_missing_master_key_file_names_partition_and_file(tmp_path: Path) -> None:
    """A deleted master key file: the error names the partition and the missing file."""
    keyring = opened(tmp_path)
    keyring.data_key(P1)
    keyring.close()
    master_key_path(tmp_path, 1).unlink()
    keyring = opened(tmp_path)
    with pytest.raises(KeyUnavailable, match=f"{P1}: master key v1 is missing: .*master-v1.key"):
        keyring.existing_key(P1)
    keyring.close()


def test_destroy_leaves_a_tombstone_and_no_bytes_behind(tmp_path: Path) -> None:
    """After destroy the wrapped key is gone from every file; errors say when and why."""
    keyring = Keyring(
        tmp_path / "keyring.db",
        Providers(tmp_path, KekConfig()),
        clock=lambda: 1_706_700_000_000_000,
    )
    keyring.data_key(P1)
    keyring.data_key(P2)
    with sqlite3.connect(tmp_path / "keyring.db") as db:
        query = "SELECT wrapped FROM data_keys WHERE partition = ?"
        (wrapped,) = db.execute(query, (P1,)).fetchone()
    db.close()
    assert wrapped in (tmp_path / "keyring.db").read_bytes()
    keyring.destroy(P1, reason="retention purge, policy auth (400 days)")
    assert keyring.is_destroyed(P1)
    assert not keyring.is_destroyed(P2)
    for path in tmp_path.iterdir():
        if path.is_file():
            assert wrapped not in path.read_bytes(), path
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keyring.db", "keys"]
    expected = (
        f"cannot decrypt partition {P1}: its data key was destroyed at 2024-01-31T11:20:00Z "
        "(retention purge, policy auth (400 days))"
    )
    with pytest.raises(KeyUnavailable) as info:
        keyring.existing_key(P1)
    assert str(info.value) == expected
    with pytest.raises(KeyUnavailable, match="was destroyed"):
        keyring.data_key(P1)  # no fresh key for a shredded partition
    keyring.destroy(P1, reason="again")
    info_row = keyring.describe(P1)
    assert info_row is not None
    assert info_row.destroy_reason == "retention purge, policy auth (400 days)"
    keyring.destroy("p20230101_default", reason="never had events")
    assert keyring.is_destroyed("p20230101_default")
    assert keyring.existing_key(P2)
    keyring.close()


def test_a_copy_of_the_keyring_taken_before_destroy_still_opens_but_the_live_one_does_not(
    tmp_path: Path,
) -> None:
    """Shredding acts on the live keyring; an old keyring copy is what backups must not keep."""
    keyring = opened(tmp_path)
    key = keyring.data_key(P1)
    keyring.close()
    backup = tmp_path / "backup"
    backup.mkdir()
    (backup / "keyring.db").write_bytes((tmp_path / "keyring.db").read_bytes())
    keyring = opened(tmp_path)
    keyring.destroy(P1, reason="retention purge")
    keyring.close()
    assert (backup / "keyring.db").read_bytes() != (tmp_path / "keyring.db").read_bytes()
    os.symlink(tmp_path / "keys", backup / "keys")
    assert opened(backup).existing_key(P1) == key


def test_rotation_rewraps_and_the_old_master_key_can_go(tmp_path: Path) -> None:
    """After rotate, master-v1.key can be deleted and every data key still opens."""
    keyring = opened(tmp_path)
    keys = {p: keyring.data_key(p) for p in (P1, P2, "p20240202_default")}
    keyring.destroy("p20240202_default", reason="retention purge")
    result = keyring.rotate()
    assert (result.previous_version, result.version, result.rewrapped) == (1, 2, 2)
    assert [v.present for v in keyring.status().versions] == [True, True]
    keyring.close()
    master_key_path(tmp_path, 1).unlink()
    keyring = opened(tmp_path)
    assert keyring.existing_key(P1) == keys[P1]
    assert keyring.existing_key(P2) == keys[P2]
    new = keyring.data_key("p20240203_default")
    status = keyring.status()
    assert status.current_version == 2
    v1, v2 = status.versions
    assert v1.retired_at is not None
    assert (v1.live_keys, v1.destroyed_keys) == (0, 1)
    assert (v2.retired_at, v2.live_keys, v2.destroyed_keys) == (None, 3, 0)
    assert (v1.present, v2.present) == (False, True)
    assert (status.live_keys, status.destroyed_keys) == (3, 1)
    keyring.close()
    assert opened(tmp_path).existing_key("p20240203_default") == new


def test_a_failed_rotation_changes_nothing(tmp_path: Path) -> None:
    """If one data key does not open, the rotation aborts naming it and leaves v1 in charge."""
    keyring = opened(tmp_path)
    keyring.data_key(P1)
    keyring.close()
    master_key_path(tmp_path, 1).write_bytes(os.urandom(32))
    keyring = opened(tmp_path)
    with pytest.raises(KeyUnavailable, match=f"{P1}: the master key v1 does not open it"):
        keyring.rotate()
    assert not master_key_path(tmp_path, 2).exists()
    assert [v.version for v in keyring.status().versions] == [1]
    assert keyring.status().versions[0].retired_at is None
    keyring.close()


def test_rotation_from_file_to_env_provider(tmp_path: Path) -> None:
    """Switching [protect] kek then rotating moves every key to the new provider."""
    keyring = opened(tmp_path)
    key = keyring.data_key(P1)
    keyring.close()
    env = {"KEEPTRAIL_MASTER_KEY": base64.b64encode(os.urandom(32)).decode()}
    keyring = open_keyring(tmp_path, {"protect": {"kek": "env"}}, environ=env)
    assert keyring is not None
    assert keyring.rotate().provider == "env"
    keyring.close()
    master_key_path(tmp_path, 1).unlink()
    keyring = open_keyring(tmp_path, {"protect": {"kek": "env"}}, environ=env)
    assert keyring is not None
    assert keyring.existing_key(P1) == key
    assert [v.provider for v in keyring.status().versions] == ["file", "env"]
    keyring.close()


def test_env_provider_rotation_with_current_and_numbered_variables(tmp_path: Path) -> None:
    """KEEPTRAIL_MASTER_KEY = new, KEEPTRAIL_MASTER_KEY_1 = old, rotate; then drop the old one."""
    old, new = (base64.b64encode(os.urandom(32)).decode() for _ in range(2))
    config = {"protect": {"kek": "env"}}
    keyring = open_keyring(tmp_path, config, environ={"KEEPTRAIL_MASTER_KEY": old})
    assert keyring is not None
    key = keyring.data_key(P1)
    keyring.close()
    both = {"KEEPTRAIL_MASTER_KEY": new, "KEEPTRAIL_MASTER_KEY_1": old}
    keyring = open_keyring(tmp_path, config, environ=both)
    assert keyring is not None
    keyring.rotate()
    keyring.close()
    keyring = open_keyring(tmp_path, config, environ={"KEEPTRAIL_MASTER_KEY": new})
    assert keyring is not None
    assert keyring.existing_key(P1) == key
    keyring.close()
    wrong = {"KEEPTRAIL_MASTER_KEY": old}
    keyring = open_keyring(tmp_path, config, environ=wrong)
    assert keyring is not None
    with pytest.raises(KeyUnavailable, match="the master key v2 does not open it"):
        keyring.existing_key(P1)
    keyring.close()


def test_command_provider_is_spawned_once_per_partition(tmp_path: Path) -> None:
    """Unwrapped keys are cached: many lookups cost one kek_command run per partition."""
    config = command_config(tmp_path)
    keyring = opened(tmp_path, **config)
    key = keyring.data_key(P1)
    keyring.close()
    log = tmp_path / "kms" / "calls.log"
    log.write_text("")
    keyring = opened(tmp_path, **config)
    for _ in range(50):
        assert keyring.existing_key(P1) == key
    assert log.read_text().splitlines() == [f"unwrap 1 keeptrail-data-key:{P1}:v1"]
    assert keyring.rotate().rewrapped == 1
    keyring.close()
    keyring = opened(tmp_path, **config)
    assert keyring.existing_key(P1) == key
    keyring.close()


def test_command_provider_failure_names_the_partition(tmp_path: Path) -> None:
    """A kek_command that refuses to unwrap: partition, version and its stderr line."""
    config = command_config(tmp_path)
    keyring = opened(tmp_path, **config)
    keyring.data_key(P1)
    keyring.close()
    (tmp_path / "kms" / "fail").touch()
    keyring = opened(tmp_path, **config)
    with pytest.raises(KeyUnavailable) as info:
        keyring.existing_key(P1)
    assert str(info.value) == (
        f"cannot decrypt partition {P1}: the master key v1 does not open it (wrong key?) "
        "(kek_command unwrap v1 failed (exit 3): kms: access denied for key keeptrail (simulated))"
    )
    keyring.close()


def test_threads_and_processes_agree_on_one_key_per_partition(tmp_path: Path) -> None:
    """Concurrent data_key calls from threads and from a second keyring get the same key."""
    first, second = opened(tmp_path), opened(tmp_path)
    got: list[bytes] = []
    partitions = [f"p202401{d:02d}_default" for d in range(1, 21)]

    def work(keyring: Keyring) -> None:
        got.extend(keyring.data_key(p) for p in partitions)

    threads = [threading.Thread(target=work, args=(k,)) for k in (first, second) * 4]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 8 * 20
    assert len(set(got)) == 20
    assert {first.existing_key(p) for p in partitions} == set(got)
    first.close()
    second.close()


def test_a_damaged_keyring_file_is_a_clear_error(tmp_path: Path) -> None:
    """A keyring.db that is not a database: one error naming the file, no traceback."""
    (tmp_path / "keyring.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(
        UserError, match=r"cannot open keyring .*keyring\.db: file is not a database"
    ):
        opened(tmp_path)


def test_env_provider_without_a_key_cannot_initialise(tmp_path: Path) -> None:
    """kek = "env" with no variable set: the first open says which variable to set."""
    with pytest.raises(UserError, match="master key v1 is missing: set KEEPTRAIL_MASTER_KEY_1"):
        open_keyring(tmp_path, {"protect": {"kek": "env"}}, environ={})
    env = {"KEEPTRAIL_MASTER_KEY": base64.b64encode(os.urandom(32)).decode()}
    keyring = open_keyring(tmp_path, {"protect": {"kek": "env"}}, environ=env)
    assert keyring is not None
    assert keyring.status().versions[0].provider == "env"
    keyring.close()


def _store(data: Path, keyring: Keyring) -> SQLiteStore:
    return SQLiteStore(data / "events.db", keyring=keyring, signer=generate_signer("keeptrail/t/0"))


def test_a_real_store_reads_after_rotation_without_the_old_master_key(tmp_path: Path) -> None:
    """Sealed events written under v1 decrypt after rotate with master-v1.key deleted."""
    events = [
        make_event(time=1_700_000_000_000_000 + i * 86_400_000_000, details={"cmd": f"secret-{i}"})
        for i in range(3)
    ]
    keyring = opened(tmp_path)
    store = _store(tmp_path, keyring)
    store.append(events)
    store.close()
    assert keyring.rotate().rewrapped == 3
    keyring.close()
    master_key_path(tmp_path, 1).unlink()
    keyring = opened(tmp_path)
    store = _store(tmp_path, keyring)
    for event in events:
        got = store.get(event.id)
        assert got is not None
        assert got.details == event.details
    page = store.search(parse("actor.name:root"), limit=10)
    assert sorted(str(e.details["cmd"]) for e in page.events) == [
        "secret-0",
        "secret-1",
        "secret-2",
    ]
    store.close()
    keyring.close()


def test_a_real_store_with_a_wrong_or_shredded_key_says_which_partition(tmp_path: Path) -> None:
    """Reading a sealed event with a replaced master key, or a destroyed data key, is clear."""
    event = make_event(details={"cmd": "passwd alice"})
    keyring = opened(tmp_path)
    store = _store(tmp_path, keyring)
    store.append([event])
    store.close()
    keyring.close()
    original = master_key_path(tmp_path, 1).read_bytes()
    master_key_path(tmp_path, 1).write_bytes(os.urandom(32))
    keyring = opened(tmp_path)
    store = _store(tmp_path, keyring)
    with pytest.raises(KeyUnavailable, match="p20231114_default: the master key v1 does not open"):
        store.get(event.id)
    store.close()
    keyring.close()
    master_key_path(tmp_path, 1).write_bytes(original)
    keyring = opened(tmp_path)
    keyring.destroy("p20231114_default", reason="retention purge")
    store = _store(tmp_path, keyring)
    with pytest.raises(KeyUnavailable, match=r"p20231114_default: its data key was destroyed at"):
        store.get(event.id)
    store.close()
    keyring.close()


def test_partition_names_that_could_pass_for_options_are_refused(tmp_path: Path) -> None:
    """A partition name goes into the kek_command's argv: option-like or odd names are refused."""
    keyring = opened(tmp_path)
    for bad in ("-rf", "", "p 1", "p:1", "x" * 200):
        with pytest.raises(UserError, match="invalid partition name"):
            keyring.data_key(bad)
    with pytest.raises(UserError, match="invalid partition name"):
        keyring.destroy("--all", reason="x")
    keyring.close()


def test_the_keyring_file_never_holds_a_data_key_in_clear(tmp_path: Path) -> None:
    """keyring.db alone is as useless as events.db alone: only wrapped keys are stored."""
    keyring = opened(tmp_path)
    keys = [keyring.data_key(f"p202401{d:02d}_default") for d in range(1, 11)]
    keyring.rotate()
    keyring.close()
    raw = (tmp_path / "keyring.db").read_bytes()
    assert not any(key in raw for key in keys)


def test_a_process_with_a_stale_env_key_cannot_wrap_under_the_new_version(tmp_path: Path) -> None:
    """Rotated elsewhere, this process's KEEPTRAIL_MASTER_KEY is old: it refuses to wrap."""
    old, new = (base64.b64encode(os.urandom(32)).decode() for _ in range(2))
    config = {"protect": {"kek": "env"}}
    server = open_keyring(tmp_path, config, environ={"KEEPTRAIL_MASTER_KEY": old})
    assert server is not None
    key = server.data_key(P1)
    both = {"KEEPTRAIL_MASTER_KEY": new, "KEEPTRAIL_MASTER_KEY_1": old}
    admin = open_keyring(tmp_path, config, environ=both)
    assert admin is not None
    admin.rotate()
    admin.close()
    assert server.existing_key(P1) == key  # cached: nothing changed for existing partitions
    with pytest.raises(UserError, match=r"master key v2 \(env\) is not the key this keyring"):
        server.data_key(P2)
    server.close()
    fresh = open_keyring(tmp_path, config, environ={"KEEPTRAIL_MASTER_KEY": new})
    assert fresh is not None
    assert fresh.existing_key(P1) == key
    fresh.data_key(P2)
    fresh.close()


def test_a_replaced_master_key_file_cannot_wrap_new_keys(tmp_path: Path) -> None:
    """Someone swapped master-v1.key: new partitions are refused instead of sealed unreadably."""
    keyring = opened(tmp_path)
    keyring.data_key(P1)
    keyring.close()
    master_key_path(tmp_path, 1).write_bytes(os.urandom(32))
    keyring = opened(tmp_path)
    with pytest.raises(UserError, match=r"master key v1 \(file\) is not the key .*replaced\?"):
        keyring.data_key(P2)
    assert keyring.describe(P2) is None
    keyring.close()
