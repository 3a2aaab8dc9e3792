"""Deliveries to real loopback receivers: signed webhooks, retries, restarts, visible failures."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Sequence
from pathlib import Path

import orjson
import pytest
from prometheus_client import CollectorRegistry
from tests.notify.receivers import http_receiver, tcp_listener, udp_listener

from keeptrail.detect.alerts import Alert, AlertStore, Evidence
from keeptrail.event import Event
from keeptrail.notify import webhook
from keeptrail.notify.config import AppriseSink, NotifyConfig, SyslogSink, WebhookSink
from keeptrail.notify.dispatcher import Notifier
from keeptrail.notify.outbox import Outbox
from keeptrail.notify.payload import alert_payload

SECRET = b"0123456789abcdef0123456789abcdef"
T0 = 1_800_000_000_000_000


def make_alert(severity: str = "high", **overrides: object) -> Alert:
    values: dict[str, object] = {
        "id": "01a2b3c4-0000-7000-8000-000000000001",
        "rule_id": "ssh-brute-force-source",
        "title": "SSH brute force from one source",
        "severity": severity,
        "tags": ["attack.t1110.001"],
        "key": {"source.ip": "203.0.113.9"},
        "first_time": T0,
        "last_time": T0 + 60_000_000,
        "count": 12,
        "evidence": [Evidence("01a2b3c4-0000-7000-8000-0000000000e1", T0, "password root")],
        "reason": "12 matching events within 10m for source.ip=203.0.113.9 (threshold 10)",
        "status": "open",
        "created_at": T0,
        "updated_at": T0,
        "history": [],
    }
    values.update(overrides)
    return Alert(**values)  # type: ignore[arg-type]


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


def notifier(
    tmp_path: Path,
    sinks: Sequence[WebhookSink | AppriseSink | SyslogSink],
    *,
    record: list[Event] | None = None,
    registry: CollectorRegistry | None = None,
    clock: Clock | None = None,
    **cfg: object,
) -> Notifier:
    config = NotifyConfig(sinks=tuple(sinks), backoff=1.0, max_backoff=8.0, **cfg)  # type: ignore[arg-type]
    recorder = record.extend if record is not None else None
    return Notifier(
        config,
        Outbox(tmp_path / "notify.db"),
        record=recorder,
        registry=registry,
        clock=clock,
    )


def test_signature_verifies_and_refuses_tampering_and_replays() -> None:
    body = orjson.dumps(alert_payload(make_alert(), is_new=True))
    headers = webhook.signed_headers(SECRET, body, "d1", now=1_700_000_000)
    assert webhook.verify(SECRET, headers, body, now=1_700_000_010)
    assert not webhook.verify(SECRET, headers, body + b" ", now=1_700_000_010)
    assert not webhook.verify(b"another secret, same length....", headers, body, now=1_700_000_010)
    assert not webhook.verify(SECRET, headers, body, now=1_700_000_000 + 301)  # a replay
    forged = {**headers, webhook.TIMESTAMP_HEADER: "1700000200"}  # a fresh stamp, old MAC
    assert not webhook.verify(SECRET, forged, body, now=1_700_000_200)


def test_webhook_retries_with_backoff_then_delivers_a_verifiable_request(tmp_path: Path) -> None:
    clock = Clock()
    registry = CollectorRegistry()
    with http_receiver(statuses=[500, 503]) as rx:
        n = notifier(tmp_path, [WebhookSink("soc", rx.url, SECRET)], clock=clock, registry=registry)
        n.listener(make_alert(), True)
        assert n.run_once() == 1  # 500
        assert n.run_once() == 0  # not due yet: backoff
        clock.now += 1_200_000
        assert n.run_once() == 1  # 503
        clock.now += 1_200_000
        assert n.run_once() == 0  # second backoff is ~2 s
        clock.now += 1_200_000
        assert n.run_once() == 1  # delivered
        n.close()
    assert len(rx.requests) == 3
    ids = {r.headers["X-Keeptrail-Delivery"] for r in rx.requests}
    assert len(ids) == 1  # the same delivery id on every retry: receivers deduplicate on it
    last = rx.requests[-1]
    assert webhook.verify(SECRET, last.headers, last.body)
    doc = json.loads(last.body)
    assert doc["type"] == "keeptrail.alert/v1"
    assert doc["alert"]["key"] == {"source.ip": "203.0.113.9"}
    assert doc["alert"]["evidence"][0]["summary"] == "password root"
    assert registry.get_sample_value("keeptrail_notify_delivered_total", {"sink": "soc"}) == 1
    assert (
        registry.get_sample_value("keeptrail_notify_attempt_failures_total", {"sink": "soc"}) == 2
    )


def test_final_failure_is_counted_and_recorded_as_an_event(tmp_path: Path) -> None:
    clock = Clock()
    registry = CollectorRegistry()
    recorded: list[Event] = []
    with http_receiver(statuses=[500] * 10) as rx:
        n = notifier(
            tmp_path,
            [WebhookSink("soc", rx.url, SECRET)],
            record=recorded,
            registry=registry,
            clock=clock,
            max_attempts=3,
        )
        n.listener(make_alert(), True)
        for _ in range(6):
            n.run_once()
            clock.now += 10_000_000
        assert registry.get_sample_value("keeptrail_notify_pending") == 0
        n.close()
    assert len(rx.requests) == 3
    (event,) = recorded
    assert event.action == "alert.delivery_failed"
    assert event.category == "alert"
    assert event.outcome == "failure"
    assert event.details["sink"] == "soc"
    assert event.details["attempts"] == 3
    assert event.details["error"] == "HTTP 500"
    assert event.details["alert_id"] == make_alert().id
    assert registry.get_sample_value("keeptrail_notify_failed_total", {"sink": "soc"}) == 1


def test_a_refusal_is_not_retried(tmp_path: Path) -> None:
    recorded: list[Event] = []
    with http_receiver(statuses=[400]) as rx:
        n = notifier(tmp_path, [WebhookSink("soc", rx.url, SECRET)], record=recorded)
        n.listener(make_alert(), True)
        n.run_once()
        n.close()
    assert len(rx.requests) == 1
    assert [e.details["error"] for e in recorded] == ["HTTP 400"]


def test_pending_deliveries_survive_a_restart(tmp_path: Path) -> None:
    with http_receiver() as rx:
        first = notifier(tmp_path, [WebhookSink("soc", rx.url, SECRET)])
        first.listener(make_alert(), True)  # queued, never sent: the process "dies"
        first.outbox.close()
        second = notifier(tmp_path, [WebhookSink("soc", rx.url, SECRET)])
        assert second.run_once() == 1
        assert second.outbox.counts() == {"delivered": 1}
        second.close()
    assert len(rx.requests) == 1


def test_a_failure_that_cannot_be_recorded_is_recorded_later(tmp_path: Path) -> None:
    calls: list[int] = []

    def broken(events: Sequence[Event]) -> None:
        calls.append(len(events))
        raise OSError("store unavailable")

    with http_receiver(statuses=[400]) as rx:
        n = notifier(tmp_path, [WebhookSink("soc", rx.url, SECRET)])
        n.record = broken
        n.listener(make_alert(), True)
        n.run_once()
        assert calls == [1]
        assert len(n.outbox.unreported()) == 1
        recorded: list[Event] = []
        n.record = recorded.extend
        n.run_once()
        n.close()
    assert [e.action for e in recorded] == ["alert.delivery_failed"]


def test_severity_floor_and_updates(tmp_path: Path) -> None:
    with http_receiver() as rx:
        n = notifier(
            tmp_path,
            [
                WebhookSink("all", rx.url, SECRET),
                WebhookSink("pager", rx.url, SECRET, min_severity="critical"),
            ],
        )
        n.listener(make_alert("high"), True)  # to "all" only
        n.listener(make_alert("critical"), False)  # an update: not delivered by default
        n.listener(make_alert("critical"), True)  # to both
        n.run_once()
        n.close()
    assert len(rx.requests) == 3


def test_background_thread_delivers(tmp_path: Path) -> None:
    with http_receiver() as rx:
        n = notifier(tmp_path, [WebhookSink("soc", rx.url, SECRET)])
        n.start()
        n.listener(make_alert(), True)
        assert rx.arrived.wait(5)
        n.close()


def test_apprise_json_url_reaches_a_real_receiver(tmp_path: Path) -> None:
    with http_receiver() as rx:
        url = rx.url.replace("http://", "json://") + "/hook"
        n = notifier(tmp_path, [AppriseSink("chat", (url,))])
        n.listener(make_alert(), True)
        n.run_once()
        n.close()
    (request,) = rx.requests
    doc = json.loads(request.body)
    assert doc["title"] == "[high] SSH brute force from one source"
    assert "why: 12 matching events" in doc["message"]
    assert "203.0.113.9" in doc["message"]


def test_syslog_cef_over_udp_and_tcp(tmp_path: Path) -> None:
    with udp_listener() as (port, sock):
        n = notifier(tmp_path, [SyslogSink("siem", "127.0.0.1", port, "udp", hostname="kt1")])
        n.listener(make_alert(), True)
        n.run_once()
        n.close()
        frame, _ = sock.recvfrom(65536)
    assert frame.startswith(b"<83>1 ")  # authpriv (10) * 8 + error (3) for a high alert
    assert b" kt1 keeptrail - alert - \xef\xbb\xbfCEF:0|Keeptrail|Keeptrail|" in frame
    assert b"|ssh-brute-force-source|SSH brute force from one source|8|" in frame
    assert b"src=203.0.113.9" in frame
    with tcp_listener() as (port, chunks, done):
        n = notifier(tmp_path / "tcp", [SyslogSink("siem", "127.0.0.1", port, "tcp")])
        n.listener(make_alert("critical"), True)
        n.run_once()
        n.close()
        assert done.wait(5)
    data = b"".join(chunks)
    length, _, rest = data.partition(b" ")
    assert int(length) == len(rest)  # RFC 6587 octet counting
    assert rest.startswith(b"<82>1 ")


def test_unreachable_syslog_is_retried(tmp_path: Path) -> None:
    # a bound socket that does not listen: connections are refused, and no other process can
    # take the port meanwhile
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        n = notifier(tmp_path, [SyslogSink("siem", "127.0.0.1", port, "tcp", timeout=1.0)])
        n.listener(make_alert(), True)
        n.run_once()
    (row,) = n.outbox.due(T0 * 10)
    assert row.attempts == 1
    assert row.last_error
    assert "syslog tcp" in row.last_error
    n.close()


@pytest.mark.parametrize("kind", ["webhook", "syslog"])
def test_payload_text_is_data(tmp_path: Path, kind: str) -> None:
    """A hostile user name travels as data: JSON-escaped, or CEF-escaped in the extension."""
    evil = "x=1 |cs1=forged\nCEF:0|fake"
    alert = make_alert(key={"actor.name": evil}, title="t|itle\\")
    doc = alert_payload(alert, is_new=True)
    if kind == "webhook":
        assert json.loads(orjson.dumps(doc))["alert"]["key"]["actor.name"] == evil
    else:
        from keeptrail.notify.syslog_cef import cef_record  # noqa: PLC0415

        record = cef_record(doc)
        assert "\n" not in record
        assert "suser=x\\=1 |cs1\\=forged\\nCEF:0|fake" in record
        assert "|t\\|itle\\\\|" in record


def test_https_webhook_verified_with_a_private_ca(tmp_path: Path) -> None:
    from tests.server.test_ops import _cert  # noqa: PLC0415  (the server tests' certificate maker)

    ca_cert, _, ca, ca_key = _cert(tmp_path, "hooks-ca", None, ca=True)
    cert, key, _, _ = _cert(tmp_path, "receiver", (ca, ca_key))
    clock = Clock()
    with http_receiver(tls=(cert, key)) as rx:
        untrusted = notifier(tmp_path / "a", [WebhookSink("soc", rx.url, SECRET)], clock=clock)
        untrusted.listener(make_alert(), True)
        untrusted.run_once()
        (row,) = untrusted.outbox.due(T0 * 10)  # refused by certificate verification: retried
        assert row.last_error
        assert "CERTIFICATE_VERIFY_FAILED" in row.last_error
        untrusted.close()
        trusted = notifier(
            tmp_path / "b", [WebhookSink("soc", rx.url, SECRET, ca_file=ca_cert)], clock=clock
        )
        trusted.listener(make_alert(), True)
        assert trusted.run_once() == 1
        assert trusted.outbox.counts() == {"delivered": 1}
        trusted.close()
    assert len(rx.requests) == 1


def test_a_stuck_sink_does_not_delay_the_others(tmp_path: Path) -> None:
    # a receiver that accepts connections and never answers: its sink waits for its timeout
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as stuck:
        stuck.bind(("127.0.0.1", 0))
        stuck.listen(8)
        slow_url = f"http://127.0.0.1:{stuck.getsockname()[1]}/"
        with http_receiver() as rx:
            n = notifier(
                tmp_path,
                [
                    WebhookSink("stuck", slow_url, SECRET, timeout=5.0),
                    WebhookSink("fast", rx.url, SECRET),
                ],
            )
            n.start()
            n.listener(make_alert(), True)
            assert rx.arrived.wait(2.5)  # well before the stuck sink's 5 s timeout
            deadline = time.monotonic() + 2
            while n.outbox.counts().get("delivered") != 1 and time.monotonic() < deadline:
                time.sleep(0.02)  # the receiver answered; the sender records it just after
            assert n.outbox.counts() == {"pending": 1, "delivered": 1}
            n.close()


def test_deliveries_of_a_removed_sink_fail_visibly(tmp_path: Path) -> None:
    with http_receiver() as rx:
        first = notifier(tmp_path, [WebhookSink("old", rx.url, SECRET)])
        first.listener(make_alert(), True)
        first.outbox.close()
    recorded: list[Event] = []
    second = notifier(tmp_path, [], record=recorded)
    second.start()
    second.close()
    assert [(e.action, e.details["sink_kind"]) for e in recorded] == [
        ("alert.delivery_failed", "removed")
    ]


def test_the_documented_receiver_snippet_verifies_a_real_request(tmp_path: Path) -> None:
    """docs/detect.md's verification code, run as written against a delivered request."""
    doc = (Path(__file__).parents[2] / "docs" / "detect.md").read_text()
    start = doc.index("```python\nimport hashlib, hmac, time")
    code = doc[start + len("```python\n") : doc.index("```", start + 10)]
    scope: dict[str, object] = {}
    exec(compile(code, "docs/detect.md", "exec"), scope)  # our own documentation
    verify = scope["verify"]
    assert callable(verify)
    with http_receiver() as rx:
        n = notifier(tmp_path, [WebhookSink("soc", rx.url, SECRET)])
        n.listener(make_alert(), True)
        n.run_once()
        n.close()
    (request,) = rx.requests
    assert verify(SECRET, request.headers, request.body)
    assert not verify(SECRET, request.headers, request.body.replace(b"high", b"low!"))
    stale = {**request.headers, "X-Keeptrail-Timestamp": "1000000000"}
    assert not verify(SECRET, stale, request.body)


def test_alerts_stored_while_nobody_listened_are_queued_on_start(tmp_path: Path) -> None:
    alerts = AlertStore(tmp_path / "detect.db")
    with http_receiver() as rx:
        clock = Clock()
        first = notifier(tmp_path, [WebhookSink("soc", rx.url, SECRET)], clock=clock)
        assert first.catch_up(alerts) == 0  # first start: only remembers where it begins
        old, _ = alerts.upsert(make_alert(id="", created_at=T0 - 1))  # before the notifier
        first.listener(make_alert(id="seen-alert", created_at=T0 + 1), True)
        first.run_once()
        first.outbox.close()  # the process dies; meanwhile the engine stores two more alerts
        missed, _ = alerts.upsert(
            make_alert(id="", key={"source.ip": "1.2.3.4"}, created_at=T0 + 5)
        )
        resolved, _ = alerts.upsert(
            make_alert(id="", key={"source.ip": "5.6.7.8"}, created_at=T0 + 6, status="resolved")
        )
        second = notifier(tmp_path, [WebhookSink("soc", rx.url, SECRET)], clock=clock)
        assert second.catch_up(alerts) == 1
        assert second.catch_up(alerts) == 0  # idempotent
        second.run_once()
        second.close()
    alerts.close()
    delivered = [json.loads(r.body)["alert"]["id"] for r in rx.requests]
    assert delivered == ["seen-alert", missed.id]
    assert old.id not in delivered
    assert resolved.id not in delivered
