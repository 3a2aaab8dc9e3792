"""The role matrix: every endpoint × every role, no token, a bad token and a revoked token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.server.conftest import ROLES, Running, docs, make_tokens, run_server, settings_for

from keeptrail.server.auth import PERMISSIONS
from keeptrail.server.tokens import TokenStore

# (method, path, permission or None for open endpoints, request body)
ENDPOINTS: list[tuple[str, str, str | None, Any]] = [
    ("POST", "/api/v1/events", "ingest", "BATCH"),
    ("GET", "/api/v1/events?q=user:user0", "read", None),
    ("GET", "/api/v1/events/EVENT_ID", "read", None),
    ("GET", "/api/v1/stats", "read", None),
    ("GET", "/api/v1/checkpoint", "read", None),
    ("GET", "/api/v1/events/EVENT_ID/proof", "prove", None),
    ("GET", "/api/v1/export?limit=5", "export", None),
    ("GET", "/api/v1/tokens", "admin", None),
    ("POST", "/api/v1/tokens", "admin", {"name": "NEW", "role": "viewer"}),
    ("DELETE", "/api/v1/tokens/VICTIM", "admin", None),
    ("GET", "/healthz", None, None),
    ("GET", "/readyz", None, None),
    ("GET", "/metrics", None, None),
    ("GET", "/docs", None, None),
    ("GET", "/openapi.json", None, None),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Running, str]]:
    """One server for the whole matrix, with an event to read and prove."""
    data_dir = tmp_path_factory.mktemp("roles") / "data"
    tokens = make_tokens(data_dir)
    settings = settings_for(data_dir)
    with run_server(settings) as (url, srv):
        running = Running(url, settings, srv, tokens)
        batch = docs(1)
        with running.client("ingest") as c:
            assert c.post("/api/v1/events", json=batch).status_code == 200
        yield running, batch[0]["id"]


def _call(
    running: Running, who: str | None, method: str, path: str, body: Any, event_id: str, case: str
) -> int:
    path = path.replace("EVENT_ID", event_id).replace("VICTIM", f"victim-{case}")
    if body == "BATCH":
        body = docs(1)
    elif isinstance(body, dict):
        body = {**body, "name": f"new-{case}"}
    headers = {}
    if who == "bogus":
        headers["Authorization"] = "Bearer kt_not-a-real-token"
    elif who is not None:
        headers["Authorization"] = f"Bearer {running.tokens[who]}"
    with running.client() as c:
        r = c.request(method, path, json=body, headers=headers)
    if r.status_code in (401, 403):
        assert r.json()["error"] in ("unauthorized", "forbidden")
        assert "kt_" not in r.text  # no token in any error message
    return r.status_code


@pytest.mark.parametrize(("method", "path", "permission", "body"), ENDPOINTS)
@pytest.mark.parametrize("who", [*ROLES, None, "bogus", "revoked"])
def test_role_matrix(
    server: tuple[Running, str],
    method: str,
    path: str,
    permission: str | None,
    body: Any,
    who: str | None,
) -> None:
    """Each role reaches exactly the endpoints its permission allows; others get 401 or 403."""
    running, event_id = server
    case = f"{who}-{method}-{abs(hash(path))}"
    if method == "DELETE" and who in ROLES:  # give the admin something to revoke
        ts = TokenStore(running.settings.directory)
        ts.create(name=f"victim-{case}", role="viewer", created_by="test")
        ts.close()
    status = _call(running, who, method, path, body, event_id, case)
    if permission is None:
        assert status == 200, (who, path)
    elif who in (None, "bogus", "revoked"):
        assert status == 401, (who, path)
    elif who in PERMISSIONS[permission]:
        assert status in (200, 201), (who, path, status)
    else:
        assert status == 403, (who, path)


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
