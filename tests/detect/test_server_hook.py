"""The server runs the engine after each committed batch: alerts exist when the POST returns."""

from __future__ import annotations

from pathlib import Path

from keeptrail.detect.alerts import AlertStore
from keeptrail.event import to_document, uuid7
from tests.factories import make_event
from tests.server.conftest import make_tokens, run_server, settings_for

T0 = 1_790_000_000_000_000


def test_ingest_api_raises_alerts_before_answering(tmp_path: Path) -> None:
    """Twelve failures from one source through the API: the alert and its event are there."""
    data = tmp_path / "data"
    tokens = make_tokens(data)
    batch = [
        to_document(make_event(time=T0 + k * 10_000_000, id=uuid7(), actor_name="root"))
        for k in range(12)
    ]
    with run_server(settings_for(data)) as (url, _server):
        import httpx  # noqa: PLC0415

        auth = {"Authorization": f"Bearer {tokens['ingest']}"}
        r = httpx.post(f"{url}/api/v1/events", json=batch, headers=auth, timeout=30)
        assert r.status_code == 200, r.text
        alerts = AlertStore(data / "detect.db")
        found = {a.rule_id: a for a in alerts.list()}
        alerts.close()
        assert found["ssh-brute-force-source"].count == 12
        viewer = {"Authorization": f"Bearer {tokens['viewer']}"}
        r = httpx.get(
            f"{url}/api/v1/events",
            params={"q": "action:alert.raised", "limit": 50},
            headers=viewer,
            timeout=30,
        )
        assert r.status_code == 200, r.text
        targets = {e["target"]["resource"] for e in r.json()["events"]}
        assert "ssh-brute-force-source" in targets
