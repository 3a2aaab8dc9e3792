"""Event documents from the ingest API: what is accepted, what is refused and why."""

from __future__ import annotations

from typing import Any

import pytest
from tests.factories import make_event

from keeptrail.event import canonical_bytes, to_document
from keeptrail.server.validation import InvalidEvent, document_to_event

NOW = 1_800_000_000_000_000


def _doc(**changes: Any) -> dict[str, Any]:
    doc = to_document(make_event(details={"command": "/bin/ls", "pid": 12, "tty": None}))
    doc.update(changes)
    return doc


def test_a_document_round_trips_to_the_same_event() -> None:
    """to_document output comes back as the same event (ingested_at set by the server)."""
    event = make_event(details={"command": "/bin/ls", "groups": ["a", "b"], "ok": True})
    back = document_to_event(to_document(event), NOW)
    event.ingested_at = NOW
    assert canonical_bytes(back) == canonical_bytes(event)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"time": "2024-01-01T00:00:00"}, "zone"),
        ({"time": "yesterday"}, "RFC 3339"),
        ({"time": None}, "time is required"),
        ({"category": "weird"}, "category must be one of"),
        ({"category": ["authentication"]}, "category must be one of"),
        ({"outcome": {"a": 1}}, "outcome must be one of"),
        ({"actor": {"type": {}}}, "actor.type must be one of"),
        ({"severity": ["info"]}, "severity"),
        ({"action": ""}, "action must not be empty"),
        ({"action": 5}, "action must be a string"),
        ({"outcome": "maybe"}, "outcome"),
        ({"severity": "urgent"}, "severity"),
        ({"id": "not-a-uuid"}, "id must be a UUID"),
        ({"actor": {"name": "a", "uid": "0"}}, "actor.uid must be an integer"),
        ({"actor": {"uid": True}}, "actor.uid must be an integer"),
        ({"actor": {"nickname": "x"}}, "unknown field actor.nickname"),
        ({"actor": "root"}, "actor must be an object"),
        ({"source": {"ip": "999.1.1.1"}}, "source.ip"),
        ({"source": {"port": 70000}}, "source.port"),
        ({"details": {"ratio": 0.5}}, "details.ratio"),
        ({"details": {"nested": {"a": 1}}}, "details.nested"),
        ({"details": {"big": 2**70}}, "details.big"),
        ({"details": {"list": [1, 2]}}, "list of strings"),
        ({"raw": 5}, "raw must be a string"),
        ({"v": 2}, "v must be 1"),
        ({"colour": "red"}, "unknown field colour"),
    ],
)
def test_bad_documents_are_refused_with_a_reason(changes: dict[str, Any], reason: str) -> None:
    """Each kind of bad field is refused with a reason that names it."""
    with pytest.raises(InvalidEvent, match=reason):
        document_to_event(_doc(**changes), NOW)


def test_minimal_application_event_is_accepted() -> None:
    """time, category and action are enough; the server assigns the id."""
    event = document_to_event(
        {"time": "2024-05-01T12:00:00+02:00", "category": "api", "action": "app.export"}, NOW
    )
    assert event.time == 1_714_557_600_000_000
    assert event.outcome == "unknown"
    assert len(event.id) == 36
    assert event.ingested_at == NOW


def test_not_an_object_is_refused() -> None:
    """A JSON value that is not an object is not an event."""
    with pytest.raises(InvalidEvent, match="JSON object"):
        document_to_event(["time"], NOW)


def test_clients_cannot_post_alert_events() -> None:
    """Only the server's rules engine raises alerts: a posted ``category: alert`` is refused."""
    doc = {"time": "2026-11-26T10:00:00Z", "category": "alert", "action": "alert.raised"}
    with pytest.raises(InvalidEvent, match="category"):
        document_to_event(doc, now=0)
