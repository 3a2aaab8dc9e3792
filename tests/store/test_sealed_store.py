"""Encryption at rest in the SQLite store: what is sealed, what stays clear, and failures.

Real SQLite files, a real keyring (tests/conftest.py ``sealed_store``), real log lines through
the real ingest pipeline; the plaintext checks read the raw bytes of the database files.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from tests.factories import make_event

from keeptrail.event import Event
from keeptrail.ingest import Ingestor
from keeptrail.ledger.keys import load_verifier
from keeptrail.ledger.note import generate_signer
from keeptrail.ledger.verify import verify_ledger
from keeptrail.protect.keyring import KeyUnavailable, open_keyring
from keeptrail.protect.seal import SealError
from keeptrail.query.parse import parse
from keeptrail.store import open_store
from keeptrail.store.compact import unpack
from keeptrail.store.sqlite import SQLiteStore

T0 = 1_700_000_000_000_000
SUDO_LINES = (
    "Nov 20 08:01:44 web-1 sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ;"
    " COMMAND=/usr/bin/openssl enc -d -in /srv/secret-payroll.enc -pass pass:Tr0ub4dor\n"
    "Nov 20 08:02:10 web-1 sudo:    bob : 3 incorrect password attempts ; TTY=pts/1 ;"
    " PWD=/home/bob ; USER=root ; COMMAND=/usr/bin/cat /etc/very-private-shadow-copy\n"
)
SECRET_COMMAND = b"/srv/secret-payroll.enc -pass pass:Tr0ub4dor"
SQL_LINE = (
    "2024-02-21 21:54:44.123 UTC [4242] carol@shop LOG:  statement: SELECT card_number"
    " FROM payments WHERE customer_email = 'victim@example.org'\n"
    "2024-02-21 21:54:45.001 UTC [4242] carol@shop LOG:  statement: SELECT 1\n"
)
SECRET_SQL = b"customer_email = 'victim@example.org'"


def _database_bytes(data: Path) -> bytes:
    """Every byte SQLite keeps for the event store: the file, its WAL and shared memory."""
    return b"".join(
        p.read_bytes()
        for p in (data / "events.db", data / "events.db-wal", data / "events.db-shm")
        if p.exists()
    )


def _ingest(store: SQLiteStore, tmp_path: Path, name: str, text: str) -> None:
    log = tmp_path / name
    log.write_text(text)
    Ingestor(store).ingest_file(log)


def test_no_plaintext_of_ingested_commands_or_statements(
    sealed_store: SQLiteStore, tmp_path: Path
) -> None:
    """The database file (and its WAL) holds no plaintext of a sudo command or SQL statement."""
    _ingest(sealed_store, tmp_path, "auth.log", SUDO_LINES)
    _ingest(sealed_store, tmp_path, "postgresql.log", SQL_LINE)
    commands = sealed_store.search(parse("action:sudo.command"))
    assert {e.details.get("command") for e in commands.events} >= {
        "/usr/bin/openssl enc -d -in /srv/secret-payroll.enc -pass pass:Tr0ub4dor"
    }
    statements = sealed_store.search(parse("category:database")).events
    assert statements
    assert any(SECRET_SQL.decode() in e.raw for e in statements)
    data = sealed_store.path.parent
    while_open = _database_bytes(data)
    assert (data / "events.db-wal").exists()  # the WAL was part of what was searched
    sealed_store.close()
    after_close = _database_bytes(data)
    for blob in (while_open, after_close):
        assert SECRET_COMMAND not in blob
        assert b"very-private-shadow-copy" not in blob
        assert SECRET_SQL not in blob
        assert b"victim@example.org" not in blob
        assert b"alice" in blob  # actor names are clear columns: the check can see plaintext


def test_plaintext_store_would_have_shown_the_command(store: SQLiteStore, tmp_path: Path) -> None:
    """The same check on a store without a keyring finds the command: the test can fail.

    Stored events are compressed (keeptrail.store.compact), so the file is read the way anyone
    holding it could: each stored value unpacked, no key needed.
    """
    _ingest(store, tmp_path, "auth.log", SUDO_LINES)
    store.close()
    db = sqlite3.connect(store.path)
    tables = [r[0] for r in db.execute("SELECT name FROM partitions")]
    values = [unpack(bytes(v)) for t in tables for (v,) in db.execute(f'SELECT sealed FROM "{t}"')]
    db.close()
    assert any(SECRET_COMMAND in v for v in values)


def test_sealed_events_round_trip_and_search_on_clear_and_sealed_fields(
    sealed_store: SQLiteStore,
) -> None:
    """Events read back exactly; clear fields, details.* and free text all search."""
    events = [
        make_event(
            time=T0 + i,
            actor_name=f"user{i % 3}",
            details={"command": f"/bin/job --n {i}"},
            raw=f"line {i} Session Opened",
            target_resource=f"/srv/file{i}",
        )
        for i in range(30)
    ]
    sealed_store.append(events)
    assert sealed_store.get(events[7].id) == events[7]
    by_user = sealed_store.search(parse("user:user1"), limit=100).events
    assert {e.id for e in by_user} == {e.id for e in events if e.actor_name == "user1"}
    by_detail = sealed_store.search(parse("details.command:*--n\\ 1*"), limit=100).events
    assert by_detail == [e for e in reversed(events) if "--n 1" in str(e.details["command"])]
    mixed = sealed_store.search(parse('user:user2 AND "session opened"'), limit=100).events
    assert [e.id for e in mixed] == [e.id for e in reversed(events) if e.actor_name == "user2"]
    resource = sealed_store.search(parse("resource:/srv/file3"), limit=100).events
    assert [e.id for e in resource] == [events[3].id]  # a sealed-only field, checked opened


def test_pages_continue_across_days_and_classes(tmp_path: Path) -> None:
    """Cursor pagination visits every event once, newest first, across partitions."""
    keyring = open_keyring(tmp_path, {})
    store = SQLiteStore(
        tmp_path / "events.db",
        signer=generate_signer("keeptrail/test/0"),
        keyring=keyring,
        classify=lambda e: "auth" if e.category == "authentication" else "default",
        close_keyring=True,
    )
    day = 86_400_000_000
    events = [
        make_event(time=T0 + (i % 4) * day + i, category="authentication" if i % 2 else "session")
        for i in range(40)
    ]
    store.append(events)
    # four days, one class each (the even events are sessions, on alternate days)
    assert sorted(p.retention_class for p in store.partitions()) == ["auth"] * 2 + ["default"] * 2
    seen: list[Event] = []
    cursor = None
    while True:
        page = store.search(None, limit=7, cursor=cursor)
        seen.extend(page.events)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    store.close()
    assert [e.id for e in seen] == [e.id for e in sorted(events, key=lambda e: -e.time)]


def test_residual_scan_budget_stops_early_and_continues(tmp_path: Path) -> None:
    """A sealed-field search stops after its scan budget and says where to continue."""
    store = SQLiteStore(
        tmp_path / "events.db",
        signer=generate_signer("keeptrail/test/0"),
        keyring=open_keyring(tmp_path, {}),
        scan_budget=10,
        close_keyring=True,
    )
    events = [make_event(time=T0 + i, raw="needle" if i == 0 else "hay") for i in range(25)]
    store.append(events)
    page = store.search(parse("needle"))
    assert page.stopped_early
    assert page.events == []
    assert page.next_cursor is not None
    found: list[Event] = []
    while page.next_cursor is not None:
        page = store.search(parse("needle"), cursor=page.next_cursor)
        found.extend(page.events)
    store.close()
    assert [e.id for e in found] == [events[0].id]


def test_wrong_master_key_fails_clearly_naming_the_partition(tmp_path: Path) -> None:
    """A store opened with another master key says which partition it cannot decrypt."""
    data = tmp_path / "data"
    store = open_store(data)
    event = make_event(time=T0)
    store.append([event])
    store.close()
    key_file = data / "keys" / "master-v1.key"
    key_file.write_bytes(bytes(32))  # the wrong key, same permissions
    reader = open_store(data, readonly=True)
    try:
        with pytest.raises(KeyUnavailable, match=r"cannot decrypt partition p\d{8}_\w+: "):
            reader.search(None)
        with pytest.raises(KeyUnavailable, match=r"partition p20231114_authentication: .*wrong"):
            reader.get(event.id)
    finally:
        reader.close()


def test_store_opened_without_its_keyring_names_the_partition(tmp_path: Path) -> None:
    """Reading a sealed partition without the keyring is a clear error, never garbage."""
    data = tmp_path / "data"
    store = open_store(data)
    event = make_event(time=T0)
    store.append([event])
    store.close()
    (data / "keyring.db").rename(tmp_path / "elsewhere.db")  # a copy of events.db alone
    reader = SQLiteStore(data / "events.db", readonly=True)
    try:
        with pytest.raises(KeyUnavailable, match="decrypt partition p20231114_authentication"):
            reader.get(event.id)
    finally:
        reader.close()


def _sealed_pair(tmp_path: Path) -> tuple[Path, list[Event]]:
    data = tmp_path / "data"
    store = open_store(data)
    events = [make_event(time=T0 + i, actor_name=f"user{i}") for i in range(6)]
    store.append(events)
    store.close()
    return data, events


def _verify(data: Path) -> list[tuple[str, int | None]]:
    store = open_store(data, readonly=True)
    try:
        report = verify_ledger(store, load_verifier(data))
    finally:
        store.close()
    return [(f.kind, f.leaf_index) for f in report.findings]


def _leaf(db: sqlite3.Connection, event: Event) -> int:
    (index,) = db.execute(
        "SELECT leaf_index FROM leaves WHERE id = ?", (bytes.fromhex(event.id.replace("-", "")),)
    ).fetchone()
    return int(index)


PART = "p20231114_authentication"  # the shipped retention policies' class for ssh.login


def test_verify_passes_on_an_intact_sealed_store(tmp_path: Path) -> None:
    """Decrypting every row, hashing it and checking its clear columns finds nothing."""
    data, _ = _sealed_pair(tmp_path)
    assert _verify(data) == []


def test_tampered_clear_column_is_detected(tmp_path: Path) -> None:
    """Changing a clear column (the sealed bytes untouched) is 'modified' at that leaf."""
    data, events = _sealed_pair(tmp_path)
    db = sqlite3.connect(data / "events.db", isolation_level=None)
    index = _leaf(db, events[2])
    db.execute(f'UPDATE "{PART}" SET actor_name = ? WHERE leaf_index = ?', ("nobody", index))
    db.close()
    assert _verify(data)[0] == ("modified", index)


def test_moved_ciphertext_is_detected_and_unreadable(tmp_path: Path) -> None:
    """A ciphertext copied onto another row fails authentication: verify and get both say so."""
    data, events = _sealed_pair(tmp_path)
    db = sqlite3.connect(data / "events.db", isolation_level=None)
    a, b = _leaf(db, events[1]), _leaf(db, events[4])
    db.execute(
        f'UPDATE "{PART}" SET sealed = (SELECT sealed FROM "{PART}"'
        " WHERE leaf_index = ?) WHERE leaf_index = ?",
        (a, b),
    )
    db.close()
    assert _verify(data)[0] == ("modified", b)
    store = open_store(data, readonly=True)
    try:
        with pytest.raises(SealError, match=f"event {events[4].id} in partition {PART}"):
            store.get(events[4].id)
        assert store.get(events[1].id) == events[1]
    finally:
        store.close()


def test_flipped_ciphertext_byte_is_detected(tmp_path: Path) -> None:
    """One altered byte of a sealed value is caught by its authentication tag."""
    data, events = _sealed_pair(tmp_path)
    db = sqlite3.connect(data / "events.db", isolation_level=None)
    index = _leaf(db, events[3])
    (blob,) = db.execute(f'SELECT sealed FROM "{PART}" WHERE leaf_index = ?', (index,)).fetchone()
    flipped = bytes(blob[:20]) + bytes([blob[20] ^ 1]) + bytes(blob[21:])
    db.execute(f'UPDATE "{PART}" SET sealed = ? WHERE leaf_index = ?', (flipped, index))
    db.close()
    assert _verify(data)[0] == ("modified", index)


def test_verify_with_a_wrong_key_is_a_clear_error(tmp_path: Path) -> None:
    """Verification without the right master key stops with the partition named."""
    data, _ = _sealed_pair(tmp_path)
    (data / "keys" / "master-v1.key").write_bytes(b"\x01" * 32)
    with pytest.raises(KeyUnavailable, match=r"cannot decrypt partition p\d{8}_\w+: "):
        _verify(data)


def test_encryption_can_be_turned_off_in_the_configuration(tmp_path: Path) -> None:
    """``[protect] encrypt = false``: no keyring, plaintext partitions, same answers."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "keeptrail.toml").write_text("[protect]\nencrypt = false\n")
    store = open_store(data)
    event = make_event(time=T0)
    store.append([event])
    assert [p.sealed for p in store.partitions()] == [False, False]  # with ledger.key_created
    assert store.get(event.id) == event
    store.close()
    assert not (data / "keyring.db").exists()


def test_clear_fields_are_configurable(tmp_path: Path) -> None:
    """``[protect] clear_fields`` narrows the clear columns; searches still answer right."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "keeptrail.toml").write_text('[protect]\nclear_fields = ["source.ip"]\n')
    store = open_store(data)
    events = [make_event(time=T0 + i, actor_name=f"user{i}") for i in range(4)]
    store.append(events)
    assert [e.id for e in store.search(parse("user:user2")).events] == [events[2].id]
    store.close()
    db = sqlite3.connect(data / "events.db")
    names = db.execute(f'SELECT DISTINCT actor_name FROM "{PART}"').fetchall()
    db.close()
    assert names == [(None,)]  # actor.name lives only inside the sealed bytes now
