"""Kubernetes RBAC: aggregation, bindings to subjects, cluster-admin equivalence, live API."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest

from keeptrail.errors import UserError
from keeptrail.permissions.collectors.k8s_rbac import (
    collect_k8s,
    fetch_rbac,
    load_rbac_json,
    rbac_entitlements,
)

EXPORT = Path(__file__).parent.parent / "data" / "permissions" / "k8s-rbac.json"
TOKEN = "test-bearer-token-0123456789"


@pytest.fixture(scope="module")
def rights() -> dict[tuple[str, str, str], list]:
    found, _ = rbac_entitlements(load_rbac_json(EXPORT), system="k8s:prod")
    out: dict[tuple[str, str, str], list] = {}
    for e in found:
        out.setdefault((e.principal, e.privilege, e.scope), []).append(e)
    return out


def test_aggregated_cluster_role_gets_the_selected_rules(rights) -> None:  # type: ignore[no-untyped-def]
    """``admin`` (aggregationRule) holds the rules of every ClusterRole its selector matches."""
    alice = {k[1] for k in rights if k[0] == "alice@example.com"}
    assert "* crontabs.stable.example.com" in alice  # from crontabs-admin, by label
    assert "create rolebindings.rbac.authorization.k8s.io" in alice
    assert "get pods/exec" in alice  # from system:aggregate-to-edit, also labelled for admin
    e = rights[("alice@example.com", "* crontabs.stable.example.com", "namespace:prod")][0]
    assert e.attributes["aggregated_from"] == "ClusterRole/crontabs-admin"
    assert e.granted_via == "RoleBinding/prod/ops-admin (ClusterRole/admin)"


def test_match_expressions_select_and_exclude(rights) -> None:  # type: ignore[no-untyped-def]
    """``In [true, yes]`` takes monitoring-endpoints, not monitoring-nodes (label "no")."""
    sa = "system:serviceaccount:monitoring:prometheus"
    found = {k[1] for k in rights if k[0] == sa}
    assert {"list endpoints", "watch pods", "get services"} <= found
    assert "get nodes/proxy" not in found


def test_bindings_resolve_subjects_and_scopes(rights) -> None:  # type: ignore[no-untyped-def]
    """RoleBindings grant within their namespace, ClusterRoleBindings everywhere (scope ``*``)."""
    assert ("deployers", "create deployments.apps", "namespace:prod") in rights
    ci = rights[("system:serviceaccount:prod:ci-bot", "patch deployments.apps", "namespace:prod")]
    assert ci[0].principal_kind == "serviceaccount"  # namespace defaulted from the binding
    web = rights[("system:serviceaccount:prod:web", "get secrets", "namespace:prod")][0]
    assert web.attributes["resource_names"] == "db-password,tls-cert"
    assert web.privileged
    assert ("bob@example.com", "* *", "*") in rights
    assert ("system:masters", "* url:*", "*") in rights
    assert all(e.principal_kind == "group" for e in rights[("system:masters", "* *", "*")])


def test_cluster_admin_equivalence(rights) -> None:  # type: ignore[no-untyped-def]
    """``*``/``*``/``*`` and impersonate make a binding cluster-admin-equivalent."""
    bob = rights[("bob@example.com", "* *", "*")][0]
    assert bob.privileged
    assert bob.attributes["cluster_admin_equivalent"] is True
    carol = rights[("carol@example.com", "impersonate users", "*")][0]
    assert carol.privileged
    assert carol.attributes["cluster_admin_equivalent"] is True
    deployer = rights[("deployers", "create deployments.apps", "namespace:prod")][0]
    assert not deployer.privileged
    assert "cluster_admin_equivalent" not in deployer.attributes
    secrets = rights[("alice@example.com", "list secrets", "namespace:prod")][0]
    assert secrets.privileged  # reading secrets leads to any service account's token


def test_snapshot_accounts_and_dangling_binding_warning() -> None:
    """Users and service accounts become accounts; a binding to a missing role is a warning."""
    result = collect_k8s(load_rbac_json(EXPORT), cluster="prod")
    kinds = {a.name: a.kind for a in result.snapshot.accounts}
    assert kinds["alice@example.com"] == "human"
    assert kinds["system:serviceaccount:prod:web"] == "service"
    assert "system:masters" not in kinds  # a group
    assert result.warnings == ("RoleBinding/staging/stale: Role/removed-role does not exist",)


def test_bad_export_is_a_clear_error(tmp_path: Path) -> None:
    """Not JSON, or JSON without RBAC objects: one clear error each."""
    (tmp_path / "a.json").write_text("{not json")
    (tmp_path / "b.json").write_text('{"kind": "List", "items": [{"kind": "Pod"}]}')
    with pytest.raises(UserError, match="is not JSON"):
        load_rbac_json(tmp_path / "a.json")
    with pytest.raises(UserError, match="holds no Role"):
        load_rbac_json(tmp_path / "b.json")


class _Api(BaseHTTPRequestHandler):
    """The four RBAC list endpoints, from the export; clusterroles in pages of 3."""

    objects: ClassVar[list[dict]] = []
    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.seen.append(self.path)
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._send(401, {"kind": "Status", "message": "Unauthorized"})
            return
        url = urlsplit(self.path)
        plural = url.path.rsplit("/", 1)[-1]
        kind = {
            "roles": "Role",
            "rolebindings": "RoleBinding",
            "clusterroles": "ClusterRole",
            "clusterrolebindings": "ClusterRoleBinding",
        }[plural]
        items = [
            {k: v for k, v in o.items() if k != "kind"} for o in self.objects if o["kind"] == kind
        ]
        start = int(parse_qs(url.query).get("continue", ["0"])[0])
        page = items[start : start + 3] if kind == "ClusterRole" else items
        more = kind == "ClusterRole" and start + 3 < len(items)
        meta = {"resourceVersion": "42", **({"continue": str(start + 3)} if more else {})}
        self._send(200, {"kind": f"{kind}List", "apiVersion": "rbac.authorization.k8s.io/v1",
                         "metadata": meta, "items": page})  # fmt: skip

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def api() -> Iterator[str]:
    _Api.objects = json.loads(EXPORT.read_text())["items"]
    _Api.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_live_api_gives_the_same_rights_as_the_export(api: str) -> None:
    """Paginated lists from a real HTTP server resolve to exactly the export's entitlements."""
    live = fetch_rbac(api, TOKEN)
    assert sum(1 for p in _Api.seen if "/clusterroles?" in p) >= 4  # followed ``continue``
    from_api = collect_k8s(live, cluster="prod").snapshot
    from_file = collect_k8s(load_rbac_json(EXPORT), cluster="prod").snapshot

    def key(s):
        return sorted((e.principal, e.privilege, e.scope, e.granted_via) for e in s.entitlements)

    assert key(from_api) == key(from_file)


def test_live_api_refusal_is_clear_and_hides_the_token(api: str) -> None:
    """A 401 is one line with the status; the token appears nowhere."""
    with pytest.raises(UserError, match="HTTP 401") as info:
        fetch_rbac(api, "wrong-token-secret")
    assert "wrong-token-secret" not in str(info.value)


def test_collect_plan_reads_the_token_file_and_warns_when_it_is_open(
    api: str, tmp_path: Path
) -> None:
    """``--k8s-api --token-file``: the token is read from the file; mode 0644 is a warning."""
    from keeptrail.permissions.collect import CollectPlan, collect  # noqa: PLC0415

    token = tmp_path / "k8s.token"
    token.write_text(TOKEN + "\n")
    token.chmod(0o600)
    plan = CollectPlan(sources=("k8s",), k8s_api=api, k8s_token_file=token, k8s_cluster="lab")
    (quiet,) = collect(plan)
    assert quiet.snapshot.system == "k8s:lab"
    assert not any("token file" in w for w in quiet.warnings)
    token.chmod(0o644)
    (loud,) = collect(plan)
    assert f"token file {token} is readable by others: chmod 600 it" in loud.warnings
    assert all(TOKEN not in w for w in loud.warnings)
