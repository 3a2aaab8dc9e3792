"""Self-audit: reads and token changes become audit events; token secrets are never stored."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.server.conftest import Running, docs

from keeptrail.event import Event
from keeptrail.store import open_store


def _audit_events(running: Running) -> list[Event]:
    store = open_store(running.settings.directory, readonly=True)
    try:
        from keeptrail.query import parse  # noqa: PLC0415

        return store.search(parse("category:audit"), limit=10_000).events
    finally:
        store.close()


def test_search_and_read_are_audited_with_token_name_and_ip(running: Running) -> None:
    """A search and an event read each leave an audit event naming the token and client IP."""
    batch = docs(2)
    with running.client("ingest") as c:
        c.post("/api/v1/events", json=batch)
    with running.client("viewer") as c:
        assert c.get("/api/v1/events", params={"q": "user:user1", "since": "2020-01-01"}).is_success
        assert c.get(f"/api/v1/events/{batch[0]['id']}").is_success
        assert c.get("/api/v1/events/0190b7c2-5a1e-7000-8000-1234567890ab").status_code == 404
    with running.client("auditor") as c:
        assert c.get(f"/api/v1/events/{batch[0]['id']}/proof").is_success
        assert c.get("/api/v1/export", params={"q": "user:user1"}).is_success
    found = {(e.action, e.outcome): e for e in _audit_events(running)}
    search = found[("keeptrail.search", "success")]
    assert search.actor_name == "viewer-token"
    assert search.source_ip == "127.0.0.1"
    assert search.details["query"] == "user:user1"
    assert search.details["since"] == "2020-01-01"
    assert search.details["results"] == 1
    read = found[("keeptrail.event_read", "success")]
    assert read.target_resource == batch[0]["id"]
    assert found[("keeptrail.event_read", "failure")].reason == "not_found"
    assert found[("keeptrail.proof", "success")].actor_name == "auditor-token"
    assert found[("keeptrail.export", "success")].details["query"] == "user:user1"
    assert found[("keeptrail.config_load", "success")].target_resource == "server"


def test_audit_events_are_searchable_over_the_api(running: Running) -> None:
    """The audit trail of reads can itself be searched: who looked at the audit trail."""
    with running.client("viewer") as c:
        c.get("/api/v1/events", params={"q": "user:alice"})
        r = c.get("/api/v1/events", params={"q": "action:keeptrail.search AND actor:viewer-token"})
    assert r.json()["count"] >= 1


def test_token_changes_over_the_api_are_audited(running: Running) -> None:
    """Creating and revoking a token over the API records both with the admin as actor."""
    with running.client("admin") as c:
        created = c.post("/api/v1/tokens", json={"name": "ci-bot", "role": "viewer"})
        assert created.status_code == 201
        assert created.json()["token"].startswith("kt_")
        assert c.delete("/api/v1/tokens/ci-bot").status_code == 200
    events = {e.action: e for e in _audit_events(running)}
    assert events["keeptrail.token_create"].actor_name == "admin-token"
    assert events["keeptrail.token_create"].target_resource == "ci-bot"
    assert events["keeptrail.token_revoke"].target_resource == "ci-bot"
    with running.client() as c:
        r = c.get("/api/v1/stats", headers={"Authorization": f"Bearer {created.json()['token']}"})
    assert r.status_code == 401


def test_token_changes_from_the_cli_are_audited(tmp_path: Path) -> None:
    """keeptrail tokens create/revoke record audit events with the local user as actor."""
    env = {**os.environ, "KEEPTRAIL_DATA_DIR": str(tmp_path / "data")}
    run = [sys.executable, "-m", "keeptrail", "tokens"]
    made = subprocess.run(
        [*run, "create", "--name", "bot", "--role", "ingest"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert made.stdout.strip().startswith("kt_")
    subprocess.run([*run, "revoke", "bot"], env=env, capture_output=True, check=True)
    listed = subprocess.run(
        [*run, "list", "--json"], env=env, capture_output=True, text=True, check=True
    )
    assert '"active": false' in listed.stdout
    assert made.stdout.strip() not in listed.stdout
    store = open_store(tmp_path / "data", readonly=True)
    try:
        actions = [e.action for e in store.search(None, limit=100).events]
    finally:
        store.close()
    assert "keeptrail.token_create" in actions
    assert "keeptrail.token_revoke" in actions


def test_token_secrets_never_reach_the_store_or_logs(
    running: Running, caplog: pytest.LogCaptureFixture
) -> None:
    """After using every token (and a bad one), no secret is in any data file or log line."""
    caplog.set_level(logging.DEBUG)
    with running.client("ingest") as c:
        c.post("/api/v1/events", json=docs(3))
    for role in ("admin", "auditor", "viewer", "ingest", "revoked"):
        with running.client(role) as c:
            c.get("/api/v1/events", params={"q": "user:user1"})
            c.get("/api/v1/stats")
    with running.client("admin") as c:
        new_secret = c.post("/api/v1/tokens", json={"name": "x", "role": "viewer"}).json()["token"]
    secrets = [*running.tokens.values(), new_secret]
    blobs = b"".join(p.read_bytes() for p in running.settings.directory.rglob("*") if p.is_file())
    for secret in secrets:
        assert secret.encode() not in blobs
        assert secret[3:].encode() not in blobs  # not even without the kt_ prefix
        assert secret not in caplog.text
