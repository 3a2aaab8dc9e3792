"""The ledger contract, on both backends: proofs, verification, tamper evidence."""

from __future__ import annotations

import orjson
from tests.factories import make_event
from tests.store.contract.conftest import Backend

from keeptrail.event import canonical_bytes
from keeptrail.ledger.bundle import check_bundle, consistency_bundle, inclusion_bundle
from keeptrail.ledger.verify import verify_ledger
from keeptrail.store.contract import Store

T0 = 1_700_000_000_000_000


def test_every_batch_is_signed_and_proofs_check(backend: Backend, backend_store: Store) -> None:
    """One checkpoint per batch; inclusion and consistency bundles verify with the key only."""
    batches = [
        [make_event(time=T0 + (b * 10 + i) * 1_000_000) for i in range(b + 3)] for b in range(4)
    ]
    for batch in batches:
        backend_store.append(batch)
    sizes = [cp.size for cp in backend_store.checkpoints()]
    assert sizes == [3, 7, 12, 18]
    verifier = backend.signer.verifier()
    target = batches[1][2]
    bundle = inclusion_bundle(backend_store, target.id)
    check_bundle(orjson.dumps(bundle), verifier)  # raises ProofError when it does not check
    leaf = backend_store.ledger_leaf(target.id)
    assert leaf is not None
    assert leaf.leaf_index == 5
    assert leaf.canonical == canonical_bytes(target)
    check_bundle(orjson.dumps(consistency_bundle(backend_store, 7, 18)), verifier)


def test_verify_passes_on_an_intact_store(backend: Backend, backend_store: Store) -> None:
    for b in range(3):
        backend_store.append([make_event(time=T0 + (b * 7 + i) * 1_000_000) for i in range(7)])
    report = verify_ledger(backend_store, backend.signer.verifier())
    assert report.ok, report.findings
    assert report.size == 21
    assert report.checkpoints_checked == 3


def test_verify_finds_an_edited_clear_column(backend: Backend, backend_store: Store) -> None:
    """Pointing a clear column at someone else is found although the sealed bytes hash fine."""
    events = [make_event(time=T0 + i * 1_000_000, actor_name="mallory") for i in range(5)]
    backend_store.append(events)
    partition = backend_store.partitions()[0].name
    backend.execute(
        f'UPDATE "{partition}" SET actor_name = ? WHERE id = ?',
        ("alice", backend.id_param(events[2].id)),
    )
    report = verify_ledger(backend_store, backend.signer.verifier())
    assert not report.ok
    first = report.first
    assert first is not None
    assert first.leaf_index == 2
    assert first.event_id == events[2].id


def test_verify_finds_a_deleted_row(backend: Backend, backend_store: Store) -> None:
    events = [make_event(time=T0 + i * 1_000_000) for i in range(6)]
    backend_store.append(events)
    partition = backend_store.partitions()[0].name
    backend.execute(f'DELETE FROM "{partition}" WHERE id = ?', (backend.id_param(events[4].id),))
    report = verify_ledger(backend_store, backend.signer.verifier())
    assert [(f.kind, f.leaf_index) for f in report.findings][:1] == [("missing", 4)]
