"""Compressed stored events (keeptrail.store.compact): round trip, old rows, damage.

Real SQLite files and a real keyring; old-format rows are written the way the previous version
wrote them (the canonical bytes, sealed or not, with no format byte).
"""

from __future__ import annotations

import sqlite3
import zlib
from pathlib import Path

import pytest
from tests.factories import make_event

from keeptrail.event import Event, canonical_bytes
from keeptrail.ledger.keys import load_verifier
from keeptrail.ledger.verify import verify_ledger
from keeptrail.protect.keyring import open_keyring
from keeptrail.protect.seal import Sealer, aad_for
from keeptrail.store import open_store, zdict_v1
from keeptrail.store.compact import ZDICT_V1_BYTES, CompactError, pack, unpack
from keeptrail.store.sqlite import SQLiteStore

T0 = 1_700_000_000_000_000
SAMPLES = Path(__file__).resolve().parents[2] / "src" / "keeptrail" / "samples"


def _sample_events(tmp_path: Path) -> list[bytes]:
    store = SQLiteStore(tmp_path / "s" / "events.db")
    try:
        from keeptrail.ingest import Ingestor  # noqa: PLC0415

        Ingestor(store).ingest_file(SAMPLES / "secure-rfc3339.log")
        return [canonical_bytes(e) for _, e in store.events_after(0, 1000)]
    finally:
        store.close()


def test_round_trip_is_exact_and_smaller(tmp_path: Path) -> None:
    """Every sample event comes back byte for byte, in well under half its size."""
    events = _sample_events(tmp_path)
    assert len(events) >= 5
    for data in events:
        stored = pack(data)
        assert stored[0] == 0x01
        assert unpack(stored) == data
    assert sum(len(pack(d)) for d in events) * 2 < sum(len(d) for d in events)


def test_incompressible_bytes_are_stored_raw() -> None:
    """A value DEFLATE cannot shrink is kept as it is behind format byte 0x00."""
    data = b'{"x":"' + bytes(range(256)).hex().encode()[::7] + b'"}'
    stored = pack(data)
    assert unpack(stored) == data
    assert stored[0] in (0x00, 0x01)
    assert unpack(b"\x00" + data) == data


def test_dictionary_v1_is_pinned() -> None:
    """Dictionary v1 is forever: these bytes are what every v1 row needs."""
    assert len(ZDICT_V1_BYTES) == 32768
    assert zdict_v1.SHA256 == "5f899546e23b95ee6dea8a7a4fb48d3257dfa719ebab8c1a9e8211d116730d6b"


@pytest.mark.parametrize(
    ("stored", "message"),
    [
        (b"", "empty"),
        (b"\x07abc", "unknown storage format byte 0x07"),
        (b"\x01\xff\xff\xff\xff", "corrupt"),
        (b"\x01", "truncated"),
    ],
)
def test_invalid_values_are_clear_errors(stored: bytes, message: str) -> None:
    with pytest.raises(CompactError, match=message):
        unpack(stored)


def test_trailing_bytes_are_refused() -> None:
    stored = pack(canonical_bytes(make_event(time=T0)))
    with pytest.raises(CompactError, match="trailing"):
        unpack(stored + b"junk")


def test_payload_that_is_not_json_is_refused() -> None:
    c = zlib.compressobj(6, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY, ZDICT_V1_BYTES)
    with pytest.raises(CompactError, match="JSON object"):
        unpack(b"\x01" + c.compress(b"not json") + c.flush())


def _store_with_events(data: Path, *, sealed: bool) -> tuple[list[Event], str]:
    store = open_store(data) if sealed else SQLiteStore(data / "events.db")
    events = [make_event(time=T0 + i, actor_name=f"user{i}") for i in range(4)]
    store.append(events)
    store.close()
    db = sqlite3.connect(data / "events.db")
    (part,) = db.execute(
        "SELECT partition FROM leaves WHERE id = ?", (bytes.fromhex(events[0].id.replace("-", "")),)
    ).fetchone()
    db.close()
    return events, str(part)


def _verify(data: Path) -> list[tuple[str, int | None]]:
    store = open_store(data, readonly=True) if (data / "keyring.db").exists() else None
    store = store or SQLiteStore(data / "events.db", readonly=True)
    try:
        report = verify_ledger(store, load_verifier(data))
    finally:
        store.close()
    return [(f.kind, f.leaf_index) for f in report.findings]


def _row(db: sqlite3.Connection, part: str, event: Event) -> tuple[int, bytes]:
    index, blob = db.execute(
        f'SELECT leaf_index, sealed FROM "{part}" WHERE id = ?',
        (bytes.fromhex(event.id.replace("-", "")),),
    ).fetchone()
    return int(index), bytes(blob)


@pytest.mark.parametrize("sealed", [False, True])
def test_old_rows_without_a_format_byte_still_open_and_verify(tmp_path: Path, sealed: bool) -> None:
    """A row written before compression (canonical bytes, sealed or clear) reads as before."""
    data = tmp_path / "data"
    events, part = _store_with_events(data, sealed=sealed)
    id16 = bytes.fromhex(events[1].id.replace("-", ""))
    old = canonical_bytes(events[1])
    if sealed:
        keyring = open_keyring(data, {})
        assert keyring is not None
        old = Sealer().seal(keyring.existing_key(part), old, aad_for(id16, part))
        keyring.close()
    db = sqlite3.connect(data / "events.db", isolation_level=None)
    db.execute(f'UPDATE "{part}" SET sealed = ? WHERE id = ?', (old, id16))
    db.close()
    assert _verify(data) == []
    store = open_store(data, readonly=True) if sealed else SQLiteStore(data / "events.db")
    try:
        assert store.get(events[1].id) == events[1]
        assert store.get(events[2].id) == events[2]
    finally:
        store.close()


def test_plaintext_rows_are_compressed_and_tampering_is_found(tmp_path: Path) -> None:
    """An unsealed row holds format 0x01; an altered payload is 'modified', and get says why."""
    data = tmp_path / "data"
    events, part = _store_with_events(data, sealed=False)
    db = sqlite3.connect(data / "events.db", isolation_level=None)
    index, blob = _row(db, part, events[2])
    assert blob[0] == 0x01
    assert unpack(blob) == canonical_bytes(events[2])
    damaged = blob[:-4] + bytes([blob[-4] ^ 0xFF]) + blob[-3:]
    db.execute(f'UPDATE "{part}" SET sealed = ? WHERE leaf_index = ?', (damaged, index))
    db.close()
    assert _verify(data)[0] == ("modified", index)
    store = SQLiteStore(data / "events.db", readonly=True)
    try:
        assert store.get(events[1].id) == events[1]
        try:
            got = store.get(events[2].id)
        except CompactError as exc:  # most flips: the payload no longer inflates
            assert f"event {events[2].id} in partition {part} cannot be read" in str(exc)  # noqa: PT017
        else:  # a flip that still inflates to JSON is at least not the stored event
            assert got != events[2]
    finally:
        store.close()


def test_garbage_payload_is_reported_by_verify_not_a_traceback(tmp_path: Path) -> None:
    data = tmp_path / "data"
    events, part = _store_with_events(data, sealed=False)
    db = sqlite3.connect(data / "events.db", isolation_level=None)
    index, _ = _row(db, part, events[0])
    db.execute(f'UPDATE "{part}" SET sealed = ? WHERE leaf_index = ?', (b"\x01\xff\xfe", index))
    db.close()
    assert _verify(data)[0] == ("modified", index)
    store = SQLiteStore(data / "events.db", readonly=True)
    try:
        with pytest.raises(CompactError, match="cannot be read: the compressed event is corrupt"):
            store.get(events[0].id)
    finally:
        store.close()
