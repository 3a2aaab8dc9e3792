"""The role matrix: every route of the app × every role, no token, a bad token and a revoked token.

The routes come from the app itself (``app.routes``), not from a list kept by hand: a router
added without an entry in :data:`EXPECTED` fails :func:`test_every_route_has_an_expected_role`,
so no endpoint reaches production with a role nobody decided on. :data:`EXPECTED` is the table
docs/api.md prints.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts
from tests.factories import make_event
from tests.server.conftest import ROLES, Running, docs, make_tokens, run_server, settings_for
from tests.server.test_permissions_api import seed_snapshot

from keeptrail.event import to_document, uuid7
from keeptrail.server.app import create_app
from keeptrail.server.auth import PERMISSIONS
from keeptrail.server.tokens import TokenStore

OK: frozenset[int] = frozenset({200})
CREATED: frozenset[int] = frozenset({201})
REVIEWERS = [f"{role}-token" for role in ROLES]


@dataclass(frozen=True)
class Expect:
    """Who may call a route, and what a successful call looks like.

    ``permission`` is a key of ``auth.PERMISSIONS`` (``None``: open to anyone). ``ok`` is what
    an allowed role gets: the handler ran past authorization and did its work (409 for a
    second transition of the same alert is the handler refusing the state, not the role).
    """

    permission: str | None
    ok: frozenset[int] = OK
    query: str = ""
    body: Any = None


# (method, route path as declared) -> who may call it. Every route of create_app() is here.
EXPECTED: dict[tuple[str, str], Expect] = {
    ("POST", "/api/v1/events"): Expect("ingest", body="BATCH"),
    ("GET", "/api/v1/events"): Expect("read", query="q=user:user0"),
    ("GET", "/api/v1/events/{event_id}"): Expect("read"),
    ("GET", "/api/v1/stats"): Expect("read"),
    ("GET", "/api/v1/checkpoint"): Expect("read"),
    ("GET", "/api/v1/events/{event_id}/proof"): Expect("prove"),
    ("GET", "/api/v1/export"): Expect("export", query="limit=5"),
    ("GET", "/api/v1/tokens"): Expect("admin"),
    ("POST", "/api/v1/tokens"): Expect("admin", CREATED, body={"name": "NEW", "role": "viewer"}),
    ("DELETE", "/api/v1/tokens/{name}"): Expect("admin"),
    ("GET", "/api/v1/alerts"): Expect("read"),
    ("GET", "/api/v1/alerts/{alert_id}"): Expect("read"),
    ("POST", "/api/v1/alerts/{alert_id}/ack"): Expect(
        "prove", frozenset({200, 409}), body={"comment": "looking"}
    ),
    ("POST", "/api/v1/alerts/{alert_id}/resolve"): Expect(
        "prove", frozenset({200, 409}), body={"comment": "done"}
    ),
    ("GET", "/api/v1/permissions/snapshots"): Expect("read"),
    ("GET", "/api/v1/permissions/snapshots/{snapshot_id}"): Expect("read"),
    ("GET", "/api/v1/permissions/findings"): Expect("read"),
    ("GET", "/api/v1/reviews"): Expect("read"),
    ("GET", "/api/v1/reviews/{campaign_id}"): Expect("read"),
    ("POST", "/api/v1/reviews"): Expect(
        "export", CREATED, body={"scope": "privileged:true", "reviewers": REVIEWERS}
    ),
    ("POST", "/api/v1/reviews/{campaign_id}/decisions"): Expect(
        "export", CREATED, body={"item": 1, "decision": "keep", "comment": "still needed"}
    ),
    ("POST", "/api/v1/reviews/{campaign_id}/close"): Expect("export"),
    ("GET", "/api/v1/reviews/{campaign_id}/export"): Expect("export"),
    ("GET", "/healthz"): Expect(None),
    ("GET", "/readyz"): Expect(None),
    ("GET", "/metrics"): Expect(None),
    ("GET", "/docs"): Expect(None),
    ("GET", "/openapi.json"): Expect(None),
}


def app_routes(data_dir: Path) -> set[tuple[str, str]]:
    """Every (method, path) the app serves, read from the app (HEAD rides along with GET)."""
    app = create_app(settings_for(data_dir))
    return {
        (method, str(route.path))
        for route in iter_route_contexts(app.routes)
        for method in route.methods or ()
        if method != "HEAD"
    }


def test_every_route_has_an_expected_role(tmp_path: Path) -> None:
    """A route without an entry (or an entry without a route) is a failure, not a gap."""
    served = app_routes(tmp_path / "data")
    missing = sorted(served - set(EXPECTED))
    stale = sorted(set(EXPECTED) - served)
    assert not missing, f"routes with no expected role in EXPECTED: {missing}"
    assert not stale, f"EXPECTED lists routes the app does not serve: {stale}"
    assert {e.permission for e in EXPECTED.values()} - {None} <= set(PERMISSIONS)


@dataclass
class Fixture:
    """The running server and the real things the routes act on."""

    running: Running
    event_id: str
    alert_id: str
    campaign_id: str


def _start_campaign(running: Running) -> str:
    with running.client("admin") as c:
        r = c.post("/api/v1/reviews", json={"scope": "privileged:true", "reviewers": REVIEWERS})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fixture]:
    """One server for the whole matrix: an event, an alert, a snapshot and a campaign."""
    data_dir = tmp_path_factory.mktemp("roles") / "data"
    tokens = make_tokens(data_dir)
    now = time.time_ns() // 1000
    seed_snapshot(data_dir, now)  # snapshot "snap-api", two privileged entitlements
    settings = settings_for(data_dir)
    with run_server(settings) as (url, srv):
        running = Running(url, settings, srv, tokens)
        batch = docs(1)
        failures = [  # twelve failed SSH logins from one address: ssh-brute-force-source
            to_document(make_event(time=now - 60_000_000 + k, id=uuid7(), source_ip="192.0.2.77"))
            for k in range(12)
        ]
        with running.client("ingest") as c:
            assert c.post("/api/v1/events", json=batch + failures).status_code == 200
        with running.client("admin") as c:
            alerts = c.get("/api/v1/alerts").json()["alerts"]
        assert alerts, "the fixture needs an alert"
        yield Fixture(running, batch[0]["id"], alerts[0]["id"], _start_campaign(running))


def _fill(fx: Fixture, who: str | None, method: str, path: str, case: str) -> str:
    """The route path with real ids; a fresh victim token / campaign when the call changes it."""
    if "{name}" in path:
        if who in ROLES:  # give the admin something to revoke
            ts = TokenStore(fx.running.settings.directory)
            ts.create(name=f"victim-{case}", role="viewer", created_by="test")
            ts.close()
        path = path.replace("{name}", f"victim-{case}")
    if "{campaign_id}" in path:
        changes = method == "POST"  # decide and close change the campaign: a fresh one each
        campaign = _start_campaign(fx.running) if changes and who in ROLES else fx.campaign_id
        path = path.replace("{campaign_id}", campaign)
    return (
        path.replace("{event_id}", fx.event_id)
        .replace("{alert_id}", fx.alert_id)
        .replace("{snapshot_id}", "snap-api")
    )


def _call(fx: Fixture, who: str | None, method: str, path: str, expect: Expect) -> int:
    case = f"{who}-{method}-{abs(hash(path))}"
    url = _fill(fx, who, method, path, case) + (f"?{expect.query}" if expect.query else "")
    body = expect.body
    if body == "BATCH":
        body = docs(1)
    elif isinstance(body, dict) and body.get("name") == "NEW":
        body = {**body, "name": f"new-{case}"}
    headers = {}
    if who == "bogus":
        headers["Authorization"] = "Bearer kt_not-a-real-token"
    elif who is not None:
        headers["Authorization"] = f"Bearer {fx.running.tokens[who]}"
    with fx.running.client() as c:
        r = c.request(method, url, json=body, headers=headers)
    if r.status_code in (401, 403):
        assert r.json()["error"] in ("unauthorized", "forbidden")
        assert "kt_" not in r.text  # no token in any error message
    return r.status_code


@pytest.mark.parametrize(("method", "path"), sorted(EXPECTED), ids=" ".join)
@pytest.mark.parametrize("who", [*ROLES, None, "bogus", "revoked"])
def test_role_matrix(server: Fixture, method: str, path: str, who: str | None) -> None:
    """Each role reaches exactly the routes its permission allows; others get 401 or 403."""
    expect = EXPECTED[(method, path)]
    status = _call(server, who, method, path, expect)
    if expect.permission is None:
        assert status == 200, (who, path)
    elif who in (None, "bogus", "revoked"):
        assert status == 401, (who, path)
    elif who in PERMISSIONS[expect.permission]:
        assert status in expect.ok, (who, method, path, status)
    else:
        assert status == 403, (who, method, path, status)


def test_metrics_can_require_a_token(data_dir: Path) -> None:
    """With metrics_public = false, /metrics needs a reading role."""
    tokens = make_tokens(data_dir)
    with run_server(settings_for(data_dir, metrics_public=False)) as (url, srv):
        running = Running(url, settings_for(data_dir), srv, tokens)
        with running.client() as c:
            assert c.get("/metrics").status_code == 401
        with running.client("ingest") as c:
            assert c.get("/metrics").status_code == 403
        with running.client("viewer") as c:
            assert c.get("/metrics").status_code == 200
