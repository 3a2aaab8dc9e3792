"""What ``verify`` learns from one stored row: backend-independent (docs/storage.md).

For each leaf, in leaf order, the backend hands over the ``leaves`` row, the partition's
metadata and the partition row (if any); :class:`LeafChecker` opens the sealed bytes, hashes
them, and holds the clear columns against the projection of the opened event, so an edit to a
clear column (to hide an event from a search, or to point one at someone else) is found even
though the hash covers only the sealed bytes. Rows removed by a purge are accepted only when
their partition names a purge event that is itself in the ledger.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from keeptrail.ledger.merkle import leaf_hash
from keeptrail.protect.projection import COLUMNS, DocumentProjection, dotted
from keeptrail.protect.seal import SealError
from keeptrail.store.compact import CompactError
from keeptrail.store.contract import LeafRow
from keeptrail.store.sealed import PartitionKeys, PartitionMeta


class LeafChecker:
    """Turns (leaf, partition, row) into a :class:`LeafRow` for the verify walker.

    ``purge_recorded`` maps purged/partial partitions to whether their purge event is a stored
    leaf. A :class:`~keeptrail.protect.keyring.KeyUnavailable` propagates: without a
    partition's key nothing can be said about its rows, and the error names the partition.
    """

    __slots__ = ("_keys", "_projections", "_purge_recorded")

    def __init__(self, keys: PartitionKeys, purge_recorded: dict[str, bool]) -> None:
        self._keys = keys
        self._purge_recorded = purge_recorded
        self._projections: dict[frozenset[str], DocumentProjection] = {}

    def __call__(
        self,
        leaf_index: int,
        event_id: bytes,
        partition: str,
        stored: bytes,
        meta: PartitionMeta | None,
        row: Sequence[Any] | None,
    ) -> LeafRow:
        """``row`` is ``(leaf_index, *clear columns, sealed)`` or ``None`` when absent."""
        if meta is None:
            return LeafRow(
                leaf_index, leaf_index, event_id, stored, stored, partition,
                f"its leaf names partition {partition!r}, which is not in the partitions table",
                "missing",
            )  # fmt: skip
        if row is None:
            if meta.state in ("purged", "partial"):
                if self._purge_recorded.get(meta.name):
                    return LeafRow(
                        leaf_index, leaf_index, event_id, stored, stored, partition,
                        purged_by=meta.purge_event,
                    )  # fmt: skip
                return LeafRow(
                    leaf_index, leaf_index, event_id, stored, stored, partition,
                    f"partition {partition} is marked purged, but its purge event"
                    f" {meta.purge_event} is not in the ledger",
                    "missing",
                )  # fmt: skip
            return LeafRow(
                leaf_index, leaf_index, event_id, stored, stored, partition,
                f"its row is missing from partition {partition}", "missing",
            )  # fmt: skip
        id16 = bytes(row[1])
        try:
            canonical = self._keys.canonical(meta, id16, row[-1])
        except CompactError as exc:
            return LeafRow(
                leaf_index, leaf_index, event_id, stored, stored, partition,
                f"its stored bytes in {partition} are not a valid event ({exc})",
            )  # fmt: skip
        except SealError:
            return LeafRow(
                leaf_index, leaf_index, event_id, stored, stored, partition,
                f"its sealed bytes in {partition} do not authenticate (altered, or moved from"
                " another row or partition)",
            )  # fmt: skip
        computed = leaf_hash(canonical)
        if computed != stored:  # the walker tells "modified" from "reordered"
            return LeafRow(leaf_index, leaf_index, event_id, stored, computed, partition)
        if id16 != event_id:
            return LeafRow(
                leaf_index, leaf_index, event_id, stored, computed, partition,
                f"the row of leaf {leaf_index} in {partition} carries another event id",
            )  # fmt: skip
        wrong = self._clear_mismatch(meta, canonical, row)
        if wrong:
            return LeafRow(
                leaf_index, leaf_index, event_id, stored, computed, partition,
                f"clear column(s) {', '.join(wrong)} in {partition} differ from the sealed event",
            )  # fmt: skip
        return LeafRow(leaf_index, leaf_index, event_id, stored, computed, partition)

    def _clear_mismatch(
        self, meta: PartitionMeta, canonical: bytes, row: Sequence[Any]
    ) -> list[str]:
        project = self._projections.get(meta.clear)
        if project is None:
            project = self._projections[meta.clear] = DocumentProjection(meta.clear)
        try:
            expected = project(orjson.loads(canonical))
        except (ValueError, TypeError, AttributeError):
            return ["(unreadable event)"]
        stored = row[1:-1]
        if tuple(stored) == expected:
            return []
        return [dotted(c) for c, a, b in zip(COLUMNS, stored, expected, strict=True) if a != b]
