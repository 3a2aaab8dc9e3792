"""Partitions, purges, holds and sealing, on both backends."""

from __future__ import annotations

import pytest
from tests.factories import make_event
from tests.store.contract.conftest import Backend

from keeptrail.event import Event, uuid7
from keeptrail.ledger.verify import verify_ledger
from keeptrail.protect.keyring import KeyUnavailable
from keeptrail.query.parse import parse
from keeptrail.store.contract import Hold, Store

DAY = 86_400_000_000
T0 = 1_700_006_400_000_000  # 2023-11-15T00:00:00Z


def three_days() -> list[Event]:
    return [
        make_event(time=T0 + d * DAY + i * 60_000_000, actor_name="root" if i % 3 == 0 else "bob")
        for d in range(3)
        for i in range(9)
    ]


def record_purge(store: Store, event_id: str) -> None:
    """Append the audit event a purge names (retention apply does this after purging)."""
    store.append(
        [
            make_event(
                id=event_id, time=T0 + 10 * DAY, category="audit", action="audit.retention_purge"
            )
        ]
    )


def test_events_are_partitioned_by_day_and_class(backend: Backend) -> None:
    store = backend.open(classify=lambda e: "privileged" if e.actor_name == "root" else "default")
    store.append(three_days())
    parts = {p.name: p for p in store.partitions()}
    assert sorted(parts) == [
        "p20231115_default",
        "p20231115_privileged",
        "p20231116_default",
        "p20231116_privileged",
        "p20231117_default",
        "p20231117_privileged",
    ]
    assert parts["p20231116_privileged"].events == 3
    assert parts["p20231116_default"].state == "live"
    assert parts["p20231115_default"].first_time == T0 + 60_000_000


def test_purging_a_partition_removes_its_events_and_keeps_the_ledger(
    backend: Backend, backend_store: Store
) -> None:
    """A whole day goes; the other days, the leaves and every checkpoint still verify."""
    events = three_days()
    backend_store.append(events)
    purge_id = uuid7()
    result = backend_store.purge_partition("p20231115_default", holds=[], purge_event_id=purge_id)
    record_purge(backend_store, purge_id)
    assert (result.state, result.deleted, result.kept) == ("purged", 9, 0)
    assert result.leaf_ranges == [(0, 8)]
    assert backend_store.count() == 19
    assert backend_store.get(events[0].id) is None
    assert backend_store.search(None, until=T0 + DAY, limit=50).events == []
    assert {p.name: p.state for p in backend_store.partitions()}["p20231115_default"] == "purged"
    report = verify_ledger(backend_store, backend.signer.verifier())
    assert report.ok, report.findings
    assert report.size == 28
    # New events for a purged day go to a new generation, never into the purged partition.
    late = make_event(time=T0 + 5_000_000)
    backend_store.append([late])
    names = [p.name for p in backend_store.partitions() if p.day == 20231115]
    assert names == ["p20231115_default", "p20231115_default-2"]
    assert backend_store.get(late.id) is not None


def test_a_hold_keeps_its_events_through_a_purge(backend: Backend, backend_store: Store) -> None:
    events = three_days()
    backend_store.append(events)
    hold = Hold(
        id="h1", query="actor.name:root AND failed", since=None, until=None, reason="case 7",
        created_by="legal", created_at=1,
    )  # fmt: skip
    backend_store.add_hold(hold)
    assert [h.id for h in backend_store.holds()] == ["h1"]
    purge_id = uuid7()
    result = backend_store.purge_partition(
        "p20231116_default", holds=backend_store.holds(), purge_event_id=purge_id
    )
    record_purge(backend_store, purge_id)
    assert (result.state, result.deleted, result.kept, result.key_destroyed) == (
        "partial", 6, 3, False,
    )  # fmt: skip
    kept = [e for e in events[9:18] if e.actor_name == "root"]
    assert all(backend_store.get(e.id) is not None for e in kept)
    assert all(backend_store.get(e.id) is None for e in events[9:18] if e.actor_name != "root")
    assert verify_ledger(backend_store, backend.signer.verifier()).ok
    released = backend_store.release_hold("h1", "legal", 99)
    assert released.released_at == 99
    assert backend_store.holds() == []
    assert [h.id for h in backend_store.holds(active_only=False)] == ["h1"]
    with pytest.raises(KeyError):
        backend_store.release_hold("nope", None, 1)


def test_sealed_partitions_hide_content_and_shred_on_purge(backend: Backend) -> None:
    """With a keyring the row holds ciphertext; a purge destroys the key before the rows."""
    keyring = backend.keyring()
    store = backend.open(keyring=keyring)
    secret = make_event(time=T0, details={"command": "cat /etc/top-secret"}, raw="top-secret line")
    store.append([secret])
    part = store.partitions()[0]
    assert part.sealed
    blobs = backend.execute(f'SELECT sealed FROM "{part.name}"')
    assert b"top-secret" not in bytes(blobs[0][0])
    assert [e.id for e in store.search(parse('"top-secret"'), limit=5).events] == [secret.id]
    result = store.purge_partition(part.name, holds=[], purge_event_id=uuid7())
    assert result.key_destroyed
    assert keyring.is_destroyed(part.name)
    with pytest.raises(KeyUnavailable):
        keyring.existing_key(part.name)
