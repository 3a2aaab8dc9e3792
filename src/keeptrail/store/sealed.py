"""Partition metadata, data keys and opening sealed rows: backend-independent (docs/storage.md).

Both SQL backends store an event as its canonical bytes in a ``sealed`` column, compressed
(:mod:`keeptrail.store.compact`) and then encrypted with its partition's data key when the
partition is sealed. This module is what they share around
that column: the partition metadata they read back, the per-store cache of data keys, and
turning a stored row back into canonical bytes or an :class:`~keeptrail.event.Event`. A key
that cannot be had, or a value that does not authenticate, is a clear error naming the
partition (and the event), never garbage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from keeptrail.event import Event, from_document
from keeptrail.protect.keyring import KeyUnavailable
from keeptrail.protect.projection import decode_clear
from keeptrail.protect.seal import Sealer, SealError, aad_for
from keeptrail.store.compact import CompactError, unpack
from keeptrail.store.contract import PartitionInfo
from keeptrail.store.rows import uuid_text


class KeySource(Protocol):
    """The part of :class:`keeptrail.protect.keyring.Keyring` the stores use."""

    def data_key(self, partition: str) -> bytes: ...
    def existing_key(self, partition: str) -> bytes: ...
    def destroy(self, partition: str, *, reason: str) -> None: ...
    def is_destroyed(self, partition: str) -> bool: ...
    def close(self) -> None: ...


@dataclass(slots=True, frozen=True)
class PartitionMeta:
    """A ``partitions`` row as the stores use it (``clear``: its clear column names)."""

    name: str
    day: int
    retention_class: str
    sealed: bool
    events: int
    first_time: int | None
    last_time: int | None
    first_leaf: int | None
    last_leaf: int | None
    state: str
    created_at: int
    purged_at: int | None
    purge_event: str | None
    clear: frozenset[str]

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> PartitionMeta:
        """From ``SELECT name, day, …, purge_event, clear_fields`` (``PARTITION_COLUMNS``)."""
        (name, day, rclass, sealed, events, ft, lt, fl, ll, state, created, purged, pev, clear) = (
            row
        )
        return cls(
            name,
            int(day),
            rclass,
            bool(sealed),
            int(events),
            ft,
            lt,
            fl,
            ll,
            state,
            int(created),
            purged,
            pev,
            decode_clear(clear),
        )

    def info(self) -> PartitionInfo:
        """The contract's view."""
        return PartitionInfo(
            self.name,
            self.day,
            self.retention_class,
            self.sealed,
            self.events,
            self.first_time,
            self.last_time,
            self.first_leaf,
            self.last_leaf,
            self.state,
            self.created_at,
            self.purged_at,
            self.purge_event,
        )


class PartitionKeys:
    """Data keys for one store instance, cached (the keyring caches unwrapping as well)."""

    __slots__ = ("_cache", "keyring", "sealer")

    def __init__(self, keyring: KeySource | None) -> None:
        self.keyring = keyring
        self.sealer = Sealer()
        self._cache: dict[str, bytes] = {}

    @property
    def enabled(self) -> bool:
        """Whether new partitions are sealed."""
        return self.keyring is not None

    def for_write(self, partition: str) -> bytes:
        """The key new events of ``partition`` are sealed with (created if new)."""
        key = self._cache.get(partition)
        if key is None:
            if self.keyring is None:
                raise KeyUnavailable(partition, "the store was opened without a keyring")
            key = self._cache[partition] = self.keyring.data_key(partition)
        return key

    def for_read(self, partition: str) -> bytes:
        """The key of an existing partition; :class:`KeyUnavailable` names it when missing."""
        key = self._cache.get(partition)
        if key is None:
            if self.keyring is None:
                raise KeyUnavailable(
                    partition,
                    "it is encrypted and the store was opened without its keyring"
                    " ([protect] encrypt = false, or keyring.db missing)",
                )
            key = self._cache[partition] = self.keyring.existing_key(partition)
        return key

    def shred(self, meta: PartitionMeta, purge_event_id: str) -> bool:
        """Destroy a sealed partition's data key before its rows go (crypto-shredding: every
        copy of them — backups, replicas, WAL — is unreadable from then on, whatever happens
        to the deletion). Returns whether a key was destroyed (``False``: plaintext)."""
        if not meta.sealed:
            return False
        if self.keyring is None:
            raise KeyUnavailable(
                meta.name, "purging it needs the keyring (to destroy its data key first)"
            )
        self.keyring.destroy(meta.name, reason=f"retention purge, event {purge_event_id}")
        self.forget(meta.name)
        return True

    def forget(self, partition: str) -> None:
        """Drop a cached key (after it was destroyed)."""
        key = self._cache.pop(partition, None)
        if key is not None:
            self.sealer.forget(key)

    def canonical(self, meta: PartitionMeta, id16: bytes, blob: bytes) -> bytes:
        """The canonical bytes stored in a row's ``sealed`` column: opened if sealed, unpacked.

        :class:`~keeptrail.store.compact.CompactError` (a :class:`SealError`) when the opened
        value is not a valid stored event (format byte, compressed payload).
        """
        if not meta.sealed:
            stored = bytes(blob)
        else:
            key = self.for_read(meta.name)
            try:
                stored = self.sealer.open(key, bytes(blob), aad_for(bytes(id16), meta.name))
            except SealError as exc:
                raise SealError(
                    f"event {uuid_text(bytes(id16))} in partition {meta.name} cannot be"
                    f" decrypted: {exc}"
                ) from None
        try:
            return unpack(stored)
        except CompactError as exc:
            raise CompactError(
                f"event {uuid_text(bytes(id16))} in partition {meta.name} cannot be read: {exc}"
            ) from None

    def event(self, meta: PartitionMeta, id16: bytes, blob: bytes) -> Event:
        """The stored event of a row."""
        try:
            return event_from_canonical(self.canonical(meta, id16, blob))
        except CompactError as exc:
            if str(exc).startswith("event "):
                raise
            raise CompactError(
                f"event {uuid_text(bytes(id16))} in partition {meta.name} cannot be read: {exc}"
            ) from None


def event_from_canonical(data: bytes) -> Event:
    """An event from its canonical bytes (what ``sealed`` holds once opened).

    :class:`CompactError` when they are not an event (a row altered in an unsealed partition).
    """
    try:
        return from_document(orjson.loads(data))
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise CompactError(f"the stored event is not a valid event document ({exc})") from None
