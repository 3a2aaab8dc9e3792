"""``awaiting_reclaim`` on both backends: what a purge left for ``reclaim`` to free."""

from __future__ import annotations

from tests.store.contract.conftest import Backend
from tests.store.contract.test_contract_retention import record_purge, three_days

from keeptrail.event import uuid7
from keeptrail.store.contract import Store


def test_a_purged_sealed_partition_awaits_reclaim_until_reclaimed(backend: Backend) -> None:
    """SQLite queues a purged sealed partition's detached table (key destroyed) until reclaim
    drops it; PostgreSQL frees it in the purge, so nothing waits. Reclaim leaves none waiting."""
    store = backend.open(keyring=backend.keyring())
    store.append(three_days())
    assert store.awaiting_reclaim() == []
    purge_id = uuid7()
    result = store.purge_partition("p20231115_default", holds=[], purge_event_id=purge_id)
    record_purge(store, purge_id)
    assert result.key_destroyed
    expected = ["p20231115_default"] if backend.kind == "sqlite" else []
    assert store.awaiting_reclaim() == expected
    freed = store.reclaim()
    assert (freed.dropped, freed.remaining) == (expected, 0)
    assert store.awaiting_reclaim() == []


def test_a_plaintext_purge_leaves_nothing_to_reclaim(backend_store: Store) -> None:
    """An unsealed partition is dropped (pages zeroed) in the purge itself: nothing waits."""
    backend_store.append(three_days())
    purge_id = uuid7()
    backend_store.purge_partition("p20231115_default", holds=[], purge_event_id=purge_id)
    record_purge(backend_store, purge_id)
    assert backend_store.awaiting_reclaim() == []
