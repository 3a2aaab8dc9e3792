"""The alert store: de-duplication per (rule, key, window), lifecycle, persistence."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from keeptrail.detect.alerts import MAX_EVIDENCE, Alert, AlertStore, Evidence
from keeptrail.errors import UserError


def make_alert(**overrides: object) -> Alert:
    values: dict[str, object] = {
        "id": "",
        "rule_id": "ssh-brute-force-source",
        "title": "SSH brute force",
        "severity": "high",
        "tags": ["attack.t1110.001"],
        "key": {"source.ip": "203.0.113.9"},
        "first_time": 1_000,
        "last_time": 2_000,
        "count": 10,
        "evidence": [Evidence("e1", 1_000, "ssh.login failure")],
        "reason": "10 failed logins",
        "status": "open",
        "created_at": 5,
        "updated_at": 5,
        "history": [],
        "window_start": 1_000,
    }
    values.update(overrides)
    return Alert(**values)  # type: ignore[arg-type]


@pytest.fixture
def alerts(tmp_path: Path):
    store = AlertStore(tmp_path / "detect.db")
    yield store
    store.close()


def test_same_rule_key_and_window_update_one_alert(alerts: AlertStore) -> None:
    """A second firing merges: counts add, span widens, evidence grows, reason stays."""
    first, new = alerts.upsert(make_alert())
    assert new
    assert first.id
    again, new2 = alerts.upsert(
        make_alert(
            first_time=3_000,
            last_time=4_000,
            count=1,
            evidence=[Evidence("e2", 3_000, "again")],
            reason="1 more",
        )
    )
    assert not new2
    assert again.id == first.id
    assert (again.count, again.first_time, again.last_time) == (11, 1_000, 4_000)
    assert [e.event_id for e in again.evidence] == ["e1", "e2"]
    assert again.reason == "10 failed logins"
    assert alerts.get(first.id) == again


def test_other_key_or_window_is_another_alert(alerts: AlertStore) -> None:
    """Keys and windows separate alerts."""
    a, _ = alerts.upsert(make_alert())
    b, new_b = alerts.upsert(make_alert(key={"source.ip": "198.51.100.1"}))
    c, new_c = alerts.upsert(make_alert(window_start=9_000))
    assert new_b
    assert new_c
    assert len({a.id, b.id, c.id}) == 3
    assert alerts.count() == 3


def test_evidence_is_capped(alerts: AlertStore) -> None:
    """An alert keeps at most MAX_EVIDENCE events; the count keeps the real total."""
    many = [Evidence(f"e{i}", i, "x") for i in range(MAX_EVIDENCE + 5)]
    stored, _ = alerts.upsert(make_alert(evidence=many, count=len(many)))
    assert len(stored.evidence) == MAX_EVIDENCE
    assert stored.count == MAX_EVIDENCE + 5


def test_lifecycle_records_who_when_and_why(alerts: AlertStore) -> None:
    """open → acknowledged → resolved, each step in the history; bad steps are UserErrors."""
    alert, _ = alerts.upsert(make_alert())
    acked = alerts.transition(alert.id, "acknowledged", by="alice", comment="looking")
    assert acked.status == "acknowledged"
    assert acked.history[0].by == "alice"
    done = alerts.transition(alert.id, "resolved", by="bob", comment="blocked at the firewall")
    assert [h.status for h in done.history] == ["acknowledged", "resolved"]
    with pytest.raises(UserError, match="cannot become acknowledged"):
        alerts.transition(alert.id, "acknowledged", by="x", comment="")
    with pytest.raises(UserError, match="no alert with id"):
        alerts.transition("nope", "resolved", by="x", comment="")
    with pytest.raises(UserError, match="unknown alert status"):
        alerts.transition(alert.id, "closed", by="x", comment="")


def test_a_resolved_alert_is_not_reopened_by_new_firings(alerts: AlertStore) -> None:
    """After resolution, the same (rule, key, window) raises a fresh alert with a new id."""
    alert, _ = alerts.upsert(make_alert(id="fixed-id"))
    alerts.transition(alert.id, "resolved", by="alice", comment="done")
    fresh, new = alerts.upsert(make_alert(id="fixed-id"))
    assert new
    assert fresh.id != alert.id
    assert fresh.status == "open"


def test_list_filters_and_survives_reopen(tmp_path: Path) -> None:
    """Filters by status, rule and time; everything is on disk (0600) after close."""
    path = tmp_path / "detect.db"
    store = AlertStore(path)
    a, _ = store.upsert(make_alert())
    store.upsert(make_alert(rule_id="root-login", key={"target.host": "web-1"}, last_time=9_000))
    store.transition(a.id, "acknowledged", by="alice", comment="")
    store.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = AlertStore(path)
    assert [x.rule_id for x in again.list()] == ["root-login", "ssh-brute-force-source"]
    assert [x.id for x in again.list(status="acknowledged")] == [a.id]
    assert [x.rule_id for x in again.list(rule_id="root-login")] == ["root-login"]
    assert [x.rule_id for x in again.list(since=5_000)] == ["root-login"]
    with pytest.raises(UserError):
        again.list(status="bogus")
    again.close()
