"""``/api/v1/alerts`` on a real server whose engine raises alerts and delivers them by webhook."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.factories import make_event
from tests.notify.receivers import HttpReceiver, Received, http_receiver
from tests.server.conftest import Running, make_tokens, run_server, settings_for

from keeptrail.event import to_document
from keeptrail.notify import webhook

SECRET = "api-test-webhook-secret-0123456789"


@pytest.fixture
def served(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Running, HttpReceiver]]:
    data_dir = tmp_path / "data"
    tokens = make_tokens(data_dir)
    monkeypatch.setenv("KT_TEST_WEBHOOK_SECRET", SECRET)
    monkeypatch.delenv("KEEPTRAIL_CONFIG", raising=False)
    with http_receiver() as rx:
        (data_dir / "keeptrail.toml").write_text(
            "[notify]\n"
            "[[notify.webhook]]\n"
            'name = "soc"\n'
            f'url = "{rx.url}/hook"\n'
            'secret = "$env:KT_TEST_WEBHOOK_SECRET"\n'
        )
        settings = settings_for(data_dir)
        with run_server(settings) as (url, server):
            yield Running(url, settings, server, tokens), rx


def _raise_root_login(running: Running) -> None:
    batch = [
        to_document(
            make_event(outcome="success", reason=None, actor_name="root", target_host="db-1")
        )
    ]
    with running.client("ingest") as c:
        assert c.post("/api/v1/events", json=batch).status_code == 200


def _wait_for(rx: HttpReceiver, rule_id: str, seconds: float = 10) -> Received:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for request in list(rx.requests):
            if json.loads(request.body)["alert"]["rule_id"] == rule_id:
                return request
        time.sleep(0.05)
    raise AssertionError(f"the webhook receiver never got a {rule_id} alert")


def test_alert_is_delivered_listed_acknowledged_and_resolved(
    served: tuple[Running, HttpReceiver],
) -> None:
    running, rx = served
    _raise_root_login(running)
    hook = _wait_for(rx, "root-login")
    assert webhook.verify(SECRET.encode(), hook.headers, hook.body)
    delivered = json.loads(hook.body)["alert"]
    assert delivered["key"] == {"target.host": "db-1"}

    with running.client("viewer") as viewer:
        listed = viewer.get("/api/v1/alerts", params={"status": "open"}).json()
        ids = [a["id"] for a in listed["alerts"] if a["rule_id"] == "root-login"]
        assert ids == [delivered["id"]]
        alert_id = ids[0]
        deadline = time.monotonic() + 5
        while True:  # the receiver has it; the notifier records the 2xx just after
            one = viewer.get(f"/api/v1/alerts/{alert_id}").json()
            states = [(d["sink"], d["state"]) for d in one["deliveries"]]
            if states == [("soc", "delivered")] or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert states == [("soc", "delivered")]
        assert one["evidence"]
        assert one["reason"]
        assert viewer.get("/api/v1/alerts/nope").status_code == 404
        refused = viewer.post(f"/api/v1/alerts/{alert_id}/ack", json={"comment": "mine"})
        assert refused.status_code == 403
        assert viewer.get("/api/v1/alerts", params={"status": "bogus"}).status_code == 400

    with running.client("auditor") as auditor:
        assert auditor.post(f"/api/v1/alerts/{alert_id}/ack", json={}).status_code == 400
        acked = auditor.post(f"/api/v1/alerts/{alert_id}/ack", json={"comment": "calling the DBA"})
        assert acked.status_code == 200
        assert acked.json()["status"] == "acknowledged"
        again = auditor.post(f"/api/v1/alerts/{alert_id}/ack", json={"comment": "twice"})
        assert again.status_code == 409
    with running.client("admin") as admin:
        done = admin.post(f"/api/v1/alerts/{alert_id}/resolve", json={"comment": "planned work"})
        assert done.status_code == 200
        history = [(h["status"], h["by"]) for h in done.json()["history"]]
        assert history == [("acknowledged", "auditor-token"), ("resolved", "admin-token")]
        steps = admin.get("/api/v1/events", params={"q": "category:alert", "limit": 50}).json()
        actions = {(e["action"], e.get("actor", {}).get("name")) for e in steps["events"]}
        assert ("alert.acknowledged", "auditor-token") in actions
        assert ("alert.resolved", "admin-token") in actions
        assert "alert.raised" in {a for a, _ in actions}
        reads = admin.get(
            "/api/v1/events", params={"q": "action:keeptrail.alerts_read", "limit": 50}
        ).json()
        assert {e["actor"]["name"] for e in reads["events"]} >= {"viewer-token"}


def test_deliveries_show_in_metrics(served: tuple[Running, HttpReceiver]) -> None:
    running, rx = served
    _raise_root_login(running)
    _wait_for(rx, "root-login")
    with running.client() as anonymous:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            text = anonymous.get("/metrics").text
            if 'keeptrail_notify_delivered_total{sink="soc"}' in text:
                break
            time.sleep(0.05)
    assert 'keeptrail_notify_delivered_total{sink="soc"}' in text
    assert "keeptrail_notify_pending" in text


def test_alerts_need_a_token(served: tuple[Running, HttpReceiver]) -> None:
    running, _ = served
    with running.client() as anonymous:
        assert anonymous.get("/api/v1/alerts").status_code == 401
    with running.client("ingest") as ingest:
        assert ingest.get("/api/v1/alerts").status_code == 403
