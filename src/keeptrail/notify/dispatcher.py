"""The notifier: alerts from the engine into the outbox, and one thread per sink to deliver them.

:meth:`Notifier.listener` is what the engine calls (``engine.add_listener``) after it stored an
alert: it only writes the deliveries to the outbox (one per sink that wants the alert) and wakes
the sinks' threads, so a slow receiver never slows detection — nor the other sinks, since each
sink has its own thread. A thread sends what is due,
retries failures with exponential backoff (``backoff`` doubled per attempt, capped at
``max_backoff``, ±10% jitter so many failed deliveries do not retry in lock-step), and after
``max_attempts`` marks the delivery failed, counts it and records an ``alert.delivery_failed``
event through ``record`` — the same store as everything else, so a silent receiver shows up in
searches, in the ledger and in ``/metrics``.

Metrics (in the registry handed in, the server's):
``keeptrail_notify_delivered_total{sink}``, ``keeptrail_notify_attempt_failures_total{sink}``,
``keeptrail_notify_failed_total{sink}`` (given up), ``keeptrail_notify_pending`` and
``keeptrail_notify_delivery_seconds`` (alert stored → receiver answered).
"""

from __future__ import annotations

import logging
import random
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Final

import httpx
import orjson
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from keeptrail.detect.alerts import Alert, AlertStore
from keeptrail.event import Event, uuid7
from keeptrail.notify import apprise_sink, syslog_cef, webhook
from keeptrail.notify.config import NotifyConfig, Sink, SyslogSink, WebhookSink
from keeptrail.notify.outbox import Delivery, Outbox
from keeptrail.notify.payload import DeliveryError, alert_payload

log = logging.getLogger(__name__)

Recorder = Callable[[Sequence[Event]], None]
_BUCKETS: Final = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class _Pending(Collector):
    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    def collect(self) -> Iterator[Metric]:
        try:
            pending = self.outbox.counts().get("pending", 0)
        except self.outbox.errors:  # closed at shutdown while a scrape ran
            return
        yield GaugeMetricFamily(
            "keeptrail_notify_pending",
            "Deliveries waiting in the outbox (first attempt or retry).",
            value=pending,
        )


class NotifyMetrics:
    def __init__(self, registry: CollectorRegistry, outbox: Outbox) -> None:
        self.delivered = Counter(
            "keeptrail_notify_delivered",
            "Alert deliveries that arrived.",
            ("sink",),
            registry=registry,
        )
        self.attempt_failures = Counter(
            "keeptrail_notify_attempt_failures",
            "Delivery attempts that failed (each is retried until max_attempts).",
            ("sink",),
            registry=registry,
        )
        self.failed = Counter(
            "keeptrail_notify_failed",
            "Deliveries given up after their last attempt (alert.delivery_failed events).",
            ("sink",),
            registry=registry,
        )
        self.latency = Histogram(
            "keeptrail_notify_delivery_seconds",
            "Time from an alert's delivery being queued to the receiver's answer.",
            buckets=_BUCKETS,
            registry=registry,
        )
        registry.register(_Pending(outbox))


class Notifier:
    """Deliveries of one data directory (see the module docstring)."""

    def __init__(
        self,
        config: NotifyConfig,
        outbox: Outbox,
        *,
        record: Recorder | None = None,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self.config = config
        self.outbox = outbox
        self.record = record
        self.metrics = NotifyMetrics(registry or CollectorRegistry(), outbox)
        self._clock = clock or (lambda: time.time_ns() // 1000)
        self._wakes = {sink.name: threading.Event() for sink in config.sinks}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._report_lock = threading.Lock()
        self._clients: dict[str, httpx.Client] = {}

    @classmethod
    def open(
        cls,
        data_dir: Path,
        config: NotifyConfig,
        *,
        record: Recorder | None = None,
        registry: CollectorRegistry | None = None,
        store: str | Path | None = None,
    ) -> Notifier:
        """The notifier of a data directory (its outbox in the PostgreSQL store ``store``)."""
        return cls(config, Outbox.open(data_dir, store), record=record, registry=registry)

    # --- the engine's side ---------------------------------------------------------------------

    def listener(self, alert: Alert, is_new: bool) -> None:
        """Queue the alert for every sink that wants it (called by the engine; fast)."""
        body: bytes | None = None
        now = self._clock()
        for sink in self.config.sinks:
            if not self.config.wants(sink, alert.severity, is_new=is_new):
                continue
            if body is None:
                body = orjson.dumps(alert_payload(alert, is_new=is_new))
            try:
                self.outbox.enqueue(sink.name, alert.id, alert.rule_id, body, now)
            except self.outbox.errors:  # disk full, database locked too long: counted, never silent
                self.metrics.failed.labels(sink.name).inc()
                log.exception("could not queue alert %s for %s", alert.id, sink.name)
                continue
            self._wakes[sink.name].set()
        if is_new:
            self.outbox.set_seen_until(alert.created_at)

    def catch_up(self, alerts: AlertStore, *, scan: int = 1000) -> int:
        """Queue new alerts stored while no notifier listened (a crash between the engine's
        commit and the listener, or a stop); returns how many were queued.

        The first run only records where it starts: alerts older than the notifier are not
        sent out of the blue.
        """
        seen = self.outbox.seen_until()
        if seen is None:
            self.outbox.set_seen_until(self._clock())
            return 0
        queued = 0
        recent = [a for a in alerts.list(limit=scan) if a.created_at > seen]
        for alert in sorted(recent, key=lambda a: a.created_at):
            if alert.status != "resolved" and not self.outbox.for_alert(alert.id):
                self.listener(alert, True)
                queued += 1
            self.outbox.set_seen_until(alert.created_at)
        return queued

    # --- delivering ----------------------------------------------------------------------------

    def start(self) -> None:
        """Deliver in one daemon thread per sink (a slow sink delays only itself) until stop."""
        if self._threads:
            return
        self._stop.clear()
        self.run_once(orphans_only=True)
        for name in self._wakes:
            thread = threading.Thread(
                target=self._run, args=(name,), name=f"keeptrail-notify-{name}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        for wake in self._wakes.values():
            wake.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    def close(self) -> None:
        self.stop()
        self.outbox.close()

    def _run(self, sink: str) -> None:
        wake = self._wakes[sink]
        while not self._stop.is_set():
            try:
                self.run_once(sink)
            except Exception:  # keep delivering whatever one bad row does
                log.exception("notification delivery to %s failed; retrying in 1s", sink)
                self._stop.wait(1.0)
            wake.wait(self._sleep_seconds(sink))
            wake.clear()

    def _sleep_seconds(self, sink: str) -> float:
        due = self.outbox.next_due(sink)
        if due is None:
            return 1.0
        return min(1.0, max(0.0, (due - self._clock()) / 1_000_000))

    def run_once(self, sink: str | None = None, *, orphans_only: bool = False) -> int:
        """Attempt every due delivery (of one sink, or all) once; report failures not yet
        recorded. ``orphans_only``: only fail deliveries whose sink is no longer configured.
        Returns the number of attempts. With several servers on one PostgreSQL store, only the
        one holding the delivery lock sends (:meth:`Outbox.lead`); the others return 0."""
        attempts = 0
        if not self.outbox.lead():
            return attempts
        while True:
            batch = self.outbox.due(self._clock(), sink=sink)
            if orphans_only:
                batch = [d for d in batch if d.sink not in self._wakes]
            if not batch:
                break
            for item in batch:
                self._attempt(item)
                attempts += 1
            if self._stop.is_set():
                break
        self._report_failures()
        return attempts

    def _attempt(self, item: Delivery) -> None:
        sink = self.config.sink(item.sink)
        if sink is None:  # the sink was removed from the configuration since
            self.outbox.failed(item.id, f"sink {item.sink!r} is no longer configured")
            self.metrics.failed.labels(item.sink).inc()
            return
        try:
            self._send(sink, item)
        except DeliveryError as exc:
            self.metrics.attempt_failures.labels(sink.name).inc()
            attempts = item.attempts + 1
            if not exc.retry or attempts >= self.config.max_attempts:
                self.outbox.failed(item.id, str(exc))
                self.metrics.failed.labels(sink.name).inc()
                log.warning("delivery %s to %s failed for good: %s", item.id, sink.name, exc)
            else:
                self.outbox.retry(item.id, self._clock() + self._backoff(attempts), str(exc))
            return
        now = self._clock()
        self.outbox.delivered(item.id, now)
        self.metrics.delivered.labels(sink.name).inc()
        self.metrics.latency.observe(max(0, now - item.created_at) / 1_000_000)

    def _backoff(self, attempts: int) -> int:
        """Microseconds before attempt ``attempts + 1``: doubling, capped, ±10% jitter."""
        base = min(self.config.max_backoff, self.config.backoff * 2 ** (attempts - 1))
        return int(base * random.uniform(0.9, 1.1) * 1_000_000)  # noqa: S311 (not a secret)

    def _send(self, sink: Sink, item: Delivery) -> None:
        if isinstance(sink, WebhookSink):
            client = self._clients.get(sink.name)
            if client is None:
                verify: ssl.SSLContext | bool = True
                if sink.ca_file is not None:
                    verify = ssl.create_default_context(cafile=str(sink.ca_file))
                client = self._clients[sink.name] = httpx.Client(
                    follow_redirects=False, verify=verify
                )
            webhook.post(client, sink.url, sink.secret, item.body, item.id, sink.timeout)
        elif isinstance(sink, SyslogSink):
            frame = syslog_cef.rfc5424(orjson.loads(item.body), hostname=sink.hostname)
            syslog_cef.send(sink.host, sink.port, sink.protocol, frame, sink.timeout)
        else:
            apprise_sink.send(sink.urls, orjson.loads(item.body))

    def _report_failures(self) -> None:
        if self.record is None:
            return
        with self._report_lock:  # sink threads must not record one failure twice
            failed = self.outbox.unreported()
            if not failed:
                return
            sinks = {s.name: s for s in self.config.sinks}
            events = [failure_event(d, sinks.get(d.sink)) for d in failed]
            try:
                self.record(events)
            except Exception:  # the store is unavailable: report again on the next run
                log.exception("could not record %d alert.delivery_failed events", len(events))
                return
            self.outbox.mark_reported([d.id for d in failed])


def failure_event(item: Delivery, sink: Sink | None) -> Event:
    """The ``alert.delivery_failed`` event of a delivery given up (goes into the ledger)."""
    now = time.time_ns() // 1000
    kind = sink.kind if sink is not None else "removed"
    return Event(
        time=now,
        ingested_at=now,
        category="alert",
        action="alert.delivery_failed",
        outcome="failure",
        reason="delivery_failed",
        severity="high",
        actor_type="system",
        target_system="keeptrail-notify",
        target_resource=item.sink,
        target_resource_type="notify_sink",
        details={
            "alert_id": item.alert_id,
            "rule_id": item.rule_id,
            "delivery_id": item.id,
            "sink": item.sink,
            "sink_kind": kind,
            "attempts": item.attempts,
            "error": item.last_error or "",
        },
        collector_source="notify",
        collector_parser="notify",
        raw=f"alert {item.alert_id} ({item.rule_id}) not delivered to {item.sink} "
        f"after {item.attempts} attempts: {item.last_error or ''}"[:2000],
        id=uuid7(),
    )
