"""The store's side of the ledger: leaves at append, nodes for proofs, keys, publication."""

from __future__ import annotations

import http.server
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.factories import make_event

from keeptrail.errors import UserError
from keeptrail.event import canonical_bytes
from keeptrail.ledger.checkpoint import parse_add_checkpoint, parse_checkpoint
from keeptrail.ledger.keys import load_verifier
from keeptrail.ledger.note import generate_signer, open_note
from keeptrail.ledger.proof import (
    TreeNodes,
    consistency_proof,
    inclusion_proof,
    verify_consistency,
)
from keeptrail.ledger.publish import Publisher, Witness
from keeptrail.ledger.verify import verify_ledger
from keeptrail.query.parse import parse
from keeptrail.store import rows
from keeptrail.store.sqlite import SQLiteStore
from keeptrail.store.sqlite_schema import m001_events, m002_file_positions


def leaves(store: SQLiteStore) -> list[tuple[int, bytes]]:
    return [(r.leaf_index, r.computed_hash) for chunk in store.ledger_leaves() for r in chunk]


def test_duplicates_are_dropped_before_leaf_indices_are_assigned(store: SQLiteStore) -> None:
    """Retried and repeated ids are skipped, and leaf indices stay 0..n-1 without gaps."""
    first = [make_event() for _ in range(5)]
    assert store.append(first) == 5
    again = make_event()
    assert store.append([first[1], again, first[3], again, make_event()]) == 2
    assert [i for i, _ in leaves(store)] == list(range(7))
    assert [cp.size for cp in store.checkpoints()] == [5, 7]


def test_stored_leaf_is_the_canonical_bytes_of_the_event_read_back(store: SQLiteStore) -> None:
    """The leaf hashes canonical_bytes of the event as the store returns it, odd inputs too."""
    e = make_event(
        id=make_event().id.upper(), source_ip="2001:0DB8:0::7", details={"z": None, "a": [1]}
    )
    store.append([e])
    leaf = store.ledger_leaf(e.id)
    assert leaf is not None
    assert leaf.canonical == canonical_bytes(leaf.event)
    assert leaf.event.source_ip == "2001:db8::7"
    assert leaf.leaf_hash == leaves(store)[0][1]


def test_proofs_from_stored_nodes_match_the_in_memory_tree(store: SQLiteStore) -> None:
    """Inclusion and consistency proofs served from stored tiles equal the reference tree's."""
    for n in (1, 17, 40, 200, 33):  # sizes 1..291, few of them powers of two
        store.append([make_event() for _ in range(n)])
    reference = TreeNodes([h for _, h in leaves(store)])
    size = reference.size
    for index in (0, 1, 15, 16, 100, 255, 256, size - 1):
        assert inclusion_proof(index, size, store.ledger_node) == inclusion_proof(
            index, size, reference
        )
    for old in (1, 18, 58, 258):
        proof = consistency_proof(old, size, store.ledger_node)
        assert proof == consistency_proof(old, size, reference)
        assert verify_consistency(old, size, reference.root(old), reference.root(), proof)


def test_checkpoints_are_signed_by_the_store_key(store: SQLiteStore) -> None:
    """Every batch leaves a checkpoint whose signed note opens with the store's verifier."""
    store.append([make_event() for _ in range(3)])
    assert store.verifier is not None
    latest = store.latest_checkpoint()
    assert latest is not None
    cp = parse_checkpoint(open_note(latest.note, [store.verifier]).text)
    assert (cp.size, cp.root) == (3, latest.root)


def test_new_data_directory_creates_its_key_and_records_it(tmp_path: Path) -> None:
    """Opening a fresh data directory creates the key and stores a ledger.key_created event."""
    store = SQLiteStore(tmp_path / "events.db")
    events = store.search(parse("action:ledger.key_created"), limit=5).events
    store.close()
    assert len(events) == 1
    assert load_verifier(tmp_path).key in events[0].raw
    assert events[0].category == "audit"


def test_missing_key_with_existing_checkpoints_is_refused(tmp_path: Path) -> None:
    """A store that has signed checkpoints refuses to mint a new key when its key file is gone."""
    SQLiteStore(tmp_path / "events.db").close()
    (tmp_path / "keys" / "ledger.key").unlink()
    with pytest.raises(UserError, match="missing"):
        SQLiteStore(tmp_path / "events.db")


def test_publication_failure_is_recorded_once_and_loses_nothing(tmp_path: Path) -> None:
    """An unwritable checkpoint log keeps every event and records ledger.publish_failed once."""
    publisher = Publisher(log=tmp_path / "no" / "such" / "dir" / "checkpoints.log")
    store = SQLiteStore(tmp_path / "events.db", signer=generate_signer("t/1"), publisher=publisher)
    store.append([make_event() for _ in range(3)])
    store.append([make_event() for _ in range(2)])
    failed = store.search(parse("action:ledger.publish_failed"), limit=10).events
    total = store.count()
    store.close()
    assert total == 6
    assert len(failed) == 1
    assert "checkpoints.log" in failed[0].raw


@pytest.fixture
def witness() -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server that accepts add-checkpoint requests and keeps their bodies."""
    bodies: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            bodies.append(self.rfile.read(int(self.headers["Content-Length"])).decode())
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"\xe2\x80\x94 witness AAAA\n")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/add-checkpoint", bodies
    server.shutdown()


def test_witness_receives_add_checkpoint_bodies_with_consistency_proofs(
    tmp_path: Path, witness: tuple[str, list[str]]
) -> None:
    """The witness gets tlog-witness add-checkpoint bodies whose proofs link its old size."""
    url, bodies = witness
    signer = generate_signer("t/2")
    store = SQLiteStore(
        tmp_path / "events.db", signer=signer, publisher=Publisher(witness=Witness(url, 0.0))
    )
    store.append([make_event() for _ in range(3)])
    store.append([make_event() for _ in range(6)])
    store.close()
    assert len(bodies) == 2
    old, proof, note = parse_add_checkpoint(bodies[1])
    cp = parse_checkpoint(open_note(note, [signer.verifier()]).text)
    first = parse_checkpoint(
        open_note(parse_add_checkpoint(bodies[0])[2], [signer.verifier()]).text
    )
    assert (old, cp.size) == (3, 9)
    assert verify_consistency(old, cp.size, first.root, cp.root, proof)


def test_events_stored_before_the_ledger_become_its_first_leaves(tmp_path: Path) -> None:
    """Migrating a pre-ledger database gives its events leaves in order, and it verifies."""
    path = tmp_path / "events.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at INTEGER)")
    for migration in (m001_events, m002_file_positions):
        migration(db)
        db.execute("INSERT INTO schema_migrations VALUES (?, 0)", (migration.__name__,))
    old = [make_event() for _ in range(4)]
    cols = ", ".join(rows.COLUMNS)
    marks = ", ".join("?" for _ in rows.COLUMNS)
    db.executemany(f"INSERT INTO events ({cols}) VALUES ({marks})", [rows.encode(e) for e in old])
    db.close()
    store = SQLiteStore(path)
    report = verify_ledger(store, load_verifier(tmp_path))
    ordered = [store.ledger_leaf(e.id) for e in old]
    store.close()
    assert report.ok, report.findings
    assert [leaf.leaf_index for leaf in ordered if leaf] == [0, 1, 2, 3]
