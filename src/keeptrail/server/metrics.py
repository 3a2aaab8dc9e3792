"""Prometheus metrics, in a registry per app (two apps in one process never share counters).

Counters are bumped on the ingest path; the store's size and the last checkpoint are read at
scrape time from a snapshot the ``/metrics`` handler takes through a reader thread. Label values
that come from clients (collector host and source) are capped: past :data:`MAX_LABEL_SETS`
distinct pairs new ones are counted under ``other``, so a misbehaving agent cannot blow up the
series count.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from keeptrail.event import Event

MAX_LABEL_SETS: Final = 1000
_LATENCY_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


@dataclass(slots=True)
class StoreSnapshot:
    """What the store looks like at scrape time."""

    leaves: int = 0
    bytes: int = 0
    checkpoint_size: int | None = None
    checkpoint_time: float | None = None


class _StoreCollector(Collector):
    def __init__(self) -> None:
        self.snapshot = StoreSnapshot()

    def collect(self) -> Iterator[Metric]:
        s = self.snapshot
        yield GaugeMetricFamily(
            "keeptrail_store_events", "Events in the store (ledger tree size).", value=s.leaves
        )
        yield GaugeMetricFamily(
            "keeptrail_store_bytes", "Bytes of the store's files on disk.", value=s.bytes
        )
        if s.checkpoint_size is not None and s.checkpoint_time is not None:
            yield GaugeMetricFamily(
                "keeptrail_checkpoint_size",
                "Tree size of the latest signed checkpoint.",
                value=s.checkpoint_size,
            )
            yield GaugeMetricFamily(
                "keeptrail_checkpoint_timestamp_seconds",
                "When the latest checkpoint was signed (Unix time).",
                value=s.checkpoint_time,
            )


class Metrics:
    """The server's counters and histograms."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        labels = ("collector_host", "collector_source")
        self.ingested = Counter(
            "keeptrail_events_ingested", "Events accepted by the ingest API.", labels, registry=r
        )
        self.stored = Counter(
            "keeptrail_events_stored", "Events newly stored (not duplicates).", registry=r
        )
        self.duplicates = Counter(
            "keeptrail_events_duplicate",
            "Events already stored (retried deliveries).",
            registry=r,
        )
        self.unparsed = Counter(
            "keeptrail_events_unparsed",
            "Accepted events no parser understood.",
            labels,
            registry=r,
        )
        self.rejected = Counter(
            "keeptrail_events_rejected", "Events in batches refused with 400.", registry=r
        )
        self.requests = Counter(
            "keeptrail_http_requests",
            "HTTP requests by route and status.",
            ("route", "status"),
            registry=r,
        )
        self.auth_failures = Counter(
            "keeptrail_auth_failures",
            "Requests refused with 401 or 403.",
            ("status",),
            registry=r,
        )
        self.ingest_latency = Histogram(
            "keeptrail_ingest_latency_seconds",
            "Time from receiving an ingest request to its commit.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self._store = _StoreCollector()
        r.register(self._store)
        self._label_sets: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def _labels(self, host: str | None, source: str | None) -> tuple[str, str]:
        pair = (host or "", source or "")
        if pair in self._label_sets:
            return pair
        with self._lock:
            if len(self._label_sets) >= MAX_LABEL_SETS:
                return ("other", "other")
            self._label_sets.add(pair)
        return pair

    def count_batch(self, events: Sequence[Event], stored: int) -> None:
        """Per collector counts of an accepted batch, and how many were new."""
        tally: dict[tuple[str | None, str | None], list[int]] = {}
        for e in events:
            slot = tally.setdefault((e.collector_host, e.collector_source), [0, 0])
            slot[0] += 1
            if e.category == "unparsed":
                slot[1] += 1
        for (host, source), (n, unparsed) in tally.items():
            labels = self._labels(host, source)
            self.ingested.labels(*labels).inc(n)
            if unparsed:
                self.unparsed.labels(*labels).inc(unparsed)
        self.stored.inc(stored)
        self.duplicates.inc(len(events) - stored)

    def set_store(self, snapshot: StoreSnapshot) -> None:
        self._store.snapshot = snapshot

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
