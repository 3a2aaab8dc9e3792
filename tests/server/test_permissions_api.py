"""Permissions and review API on a real server: roles, findings, a campaign end to end, audit."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
from tests.permissions.history_gen import History
from tests.server.conftest import Running

from keeptrail.event import to_document
from keeptrail.permissions.model import Account, Entitlement, Snapshot
from keeptrail.permissions.snapshots import open_snapshots

DAY = 86_400 * 1_000_000
SYSTEM = "linux:web-1"


def seed_snapshot(data_dir: Path, now: int) -> None:
    snapshot = Snapshot(
        "snap-api",
        SYSTEM,
        "linux",
        now - DAY,
        (
            Account(SYSTEM, "alice", "human", uid=1000, shell="/bin/bash"),
            Account(SYSTEM, "bob", "human", uid=1001, shell="/bin/bash"),
        ),
        (
            Entitlement(
                SYSTEM,
                "alice",
                "user",
                "sudo",
                "ALL",
                "/etc/sudoers:20 (alice)",
                True,
                first_seen=now - 300 * DAY,
            ),
            Entitlement(
                SYSTEM,
                "bob",
                "user",
                "sudo",
                "/usr/bin/reboot",
                "/etc/sudoers:21 (bob)",
                True,
                first_seen=now - 300 * DAY,
            ),
        ),
    )
    with open_snapshots(data_dir) as snapshots:
        snapshots.save(snapshot)


@pytest.fixture
def seeded(running: Running, data_dir: Path) -> Running:
    """The server with one snapshot and alice's and bob's history ingested over the API."""
    now = time.time_ns() // 1000
    seed_snapshot(data_dir, now)
    history = History(now=now)
    history.ssh_login("web-1", "alice", 1)
    history.sudo("web-1", "alice", "/usr/bin/systemctl restart nginx", 1, times=2)
    history.ssh_login("web-1", "bob", 2)
    with running.client("ingest") as client:
        answer = client.post("/api/v1/events", json=[to_document(e) for e in history.events])
        assert answer.status_code == 200, answer.text
    return running


def test_roles(seeded: Running) -> None:
    """Viewers read; auditors and admins start campaigns; ingest tokens and strangers cannot."""
    for role in ("viewer", "auditor", "admin"):
        with seeded.client(role) as c:
            for path in (
                "/api/v1/permissions/snapshots",
                "/api/v1/permissions/findings",
                "/api/v1/reviews",
            ):
                assert c.get(path).status_code == 200, (role, path)
    body = {"scope": "privileged:true", "reviewers": ["auditor-token"]}
    with seeded.client("viewer") as c:
        denied = c.post("/api/v1/reviews", json=body)
        assert denied.status_code == 403
        assert denied.json()["error"] == "forbidden"
    with seeded.client("ingest") as c:
        assert c.get("/api/v1/permissions/findings").status_code == 403
    with seeded.client() as c:
        assert c.get("/api/v1/reviews").status_code == 401


def test_findings_and_snapshots(seeded: Running) -> None:
    """Findings come with reasons and evidence; the read itself is audited."""
    with seeded.client("viewer") as c:
        snapshots = c.get("/api/v1/permissions/snapshots").json()["snapshots"]
        assert [(s["id"], s["privileged"]) for s in snapshots] == [("snap-api", 2)]
        full = c.get("/api/v1/permissions/snapshots/snap-api").json()
        assert {e["principal"] for e in full["entitlements"]} == {"alice", "bob"}
        assert c.get("/api/v1/permissions/snapshots/nope").status_code == 404
        found = c.get("/api/v1/permissions/findings", params={"kind": "unused_privilege"}).json()
        by_principal = {f["principal"]: f for f in found["findings"]}
        assert set(by_principal) == {"alice", "bob"}
        assert by_principal["alice"]["recommendation"] == (
            "narrow `ALL` to the 1 command used: `/usr/bin/systemctl restart nginx`"
        )
        assert "never used the sudo rule `/usr/bin/reboot`" in by_principal["bob"]["reason"]
        bad = c.get("/api/v1/permissions/findings", params={"kind": "bogus"})
        assert bad.status_code == 400
        assert "unknown finding kind" in bad.json()["message"]
        audited = c.get("/api/v1/events", params={"q": "action:keeptrail.findings_read"}).json()
        assert audited["count"] >= 1
        assert audited["events"][0]["actor"]["name"] == "viewer-token"


def test_campaign_over_the_api(seeded: Running) -> None:
    """Start, decide (as a named reviewer only), progress, export with ledger positions."""
    with seeded.client("auditor") as c:
        started = c.post(
            "/api/v1/reviews",
            json={
                "scope": "system:linux:* AND privileged:true",
                "reviewers": ["auditor-token"],
                "name": "API review",
                "due": "2026-12-31",
            },
        )
        assert started.status_code == 201, started.text
        campaign = started.json()["id"]
        assert started.json()["items"] == 2
        assert (
            c.post("/api/v1/reviews", json={"scope": "nope:x", "reviewers": "a"}).json()["error"]
            == "invalid_request"
        )
        shown = c.get(f"/api/v1/reviews/{campaign}").json()
        items = {i["principal"]: i["item"] for i in shown["items"]}
        decided = c.post(
            f"/api/v1/reviews/{campaign}/decisions",
            json={"item": items["bob"], "decision": "revoke", "comment": "unused for a year"},
        )
        assert decided.status_code == 201, decided.text
        assert decided.json()["progress"]["decided"] == 1
        event_id = decided.json()["event_id"]
    with seeded.client("admin") as c:
        stranger = c.post(
            f"/api/v1/reviews/{campaign}/decisions",
            json={"item": items["alice"], "decision": "keep", "comment": "ok"},
        )
        assert stranger.status_code == 400
        assert "not a reviewer" in stranger.json()["message"]
        assert c.get("/api/v1/reviews/nonexistent").status_code == 404
    with seeded.client("auditor") as c:
        last = c.post(
            f"/api/v1/reviews/{campaign}/decisions",
            json={"item": str(items["alice"]), "decision": "keep", "comment": "on call"},
        )
        assert last.json()["state"] == "closed"
        event = c.get(f"/api/v1/events/{event_id}").json()
        assert event["action"] == "review.decision"
        assert event["actor"]["name"] == "auditor-token"
        assert event["details"]["decision"] == "revoke"
        assert event["details"]["token_role"] == "auditor"
        exported = c.get(f"/api/v1/reviews/{campaign}/export")
        assert exported.status_code == 200
        doc = orjson.loads(exported.content)
        bob = next(i for i in doc["items"] if i["entitlement"]["principal"] == "bob")
        assert bob["decision"]["ledger"]["event_id"] == event_id
        assert isinstance(bob["decision"]["ledger"]["leaf_index"], int)
        assert (
            bob["decision"]["ledger"]["checkpoint"]["size"]
            > bob["decision"]["ledger"]["leaf_index"]
        )
        csv_text = c.get(f"/api/v1/reviews/{campaign}/export", params={"format": "csv"}).text
        assert csv_text.splitlines()[0].startswith("item,system,principal")
        assert (
            c.get(f"/api/v1/reviews/{campaign}/export", params={"format": "x"}).status_code == 400
        )
    with seeded.client("viewer") as c:
        assert c.get(f"/api/v1/reviews/{campaign}/export").status_code == 403
