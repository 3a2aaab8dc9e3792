"""Kubernetes RBAC: who (users, groups, service accounts) may do which verb on which resource.

Input is what ``kubectl get roles,rolebindings,clusterroles,clusterrolebindings -A -o json``
prints (a ``List``), or the same four lists read from the API server (``live.py`` style:
``fetch_rbac``). Resolution is pure (``rbac_entitlements``):

- aggregated ClusterRoles (``aggregationRule.clusterRoleSelectors``) get the rules of every
  ClusterRole whose labels match a selector (``matchLabels`` and ``matchExpressions`` with
  ``In``/``NotIn``/``Exists``/``DoesNotExist``), recursively — computed here rather than
  trusted from the export, whose ``rules`` may be stale;
- each binding is resolved to its subjects: a RoleBinding grants within its namespace (even
  when it points at a ClusterRole), a ClusterRoleBinding cluster-wide (scope ``*``);
- one entitlement per subject × verb × resource (``privilege = "get secrets"``,
  ``"create deployments.apps"``, ``"* *"``; non-resource URLs as ``"get url:/healthz"``), so
  an unused verb can be found in the audit log.

Cluster-admin equivalence: a role with ``*`` verbs on ``*`` resources in ``*`` API groups, or
with ``escalate``, ``bind`` or ``impersonate`` (each lets its holder become anyone), makes every
entitlement from that binding privileged and marked ``cluster_admin_equivalent`` (or
``namespace_admin_equivalent`` for a RoleBinding). Single rights that lead to the same place
(reading secrets, ``pods/exec``, writing RBAC objects or webhooks, ``nodes/proxy``, minting
service-account tokens) are privileged on their own.
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from keeptrail.errors import UserError
from keeptrail.event import uuid7
from keeptrail.permissions.model import (
    Account,
    AttributeValue,
    Collected,
    Entitlement,
    Snapshot,
)

__all__ = ["collect_k8s", "fetch_rbac", "load_rbac_json", "rbac_entitlements"]

KINDS: Final = ("Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")
_PATHS: Final = {
    "Role": "roles",
    "RoleBinding": "rolebindings",
    "ClusterRole": "clusterroles",
    "ClusterRoleBinding": "clusterrolebindings",
}
_ESCALATING_VERBS: Final = frozenset({"escalate", "bind", "impersonate"})
_READ: Final = frozenset({"get", "list", "watch", "*"})
_WRITE: Final = frozenset({"create", "update", "patch", "delete", "deletecollection", "*"})
_SENSITIVE_CREATE: Final = frozenset(
    {"pods/exec", "pods/attach", "pods/portforward", "nodes/proxy", "serviceaccounts/token"}
)
_RBAC_OBJECTS: Final = frozenset(
    {
        "roles",
        "clusterroles",
        "rolebindings",
        "clusterrolebindings",
        "mutatingwebhookconfigurations",
        "validatingwebhookconfigurations",
        "certificatesigningrequests/approval",
    }
)
Obj = Mapping[str, Any]


def load_rbac_json(path: Path) -> list[Obj]:
    """The RBAC objects of a ``kubectl ... -o json`` export (a List, or a single object)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path} is not JSON: {exc}") from None
    items = data.get("items") if isinstance(data, dict) and "items" in data else [data]
    if not isinstance(items, list):
        raise UserError(f"{path}: 'items' is not a list")
    found: list[Obj] = [i for i in items if isinstance(i, dict) and i.get("kind") in KINDS]
    if not found:
        raise UserError(f"{path} holds no Role, RoleBinding, ClusterRole or ClusterRoleBinding")
    return found


def fetch_rbac(
    base_url: str, token: str, *, ca_file: Path | None = None, timeout: float = 30.0
) -> list[Obj]:
    """The four RBAC lists from an API server (paginated); kinds filled in from the list."""
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    out: list[Obj] = []
    for kind, plural in _PATHS.items():
        cont = ""
        while True:
            query = urllib.parse.urlencode({"limit": 500, **({"continue": cont} if cont else {})})
            url = f"{base_url.rstrip('/')}/apis/rbac.authorization.k8s.io/v1/{plural}?{query}"
            request = urllib.request.Request(  # noqa: S310 — http(s) only, checked by the caller
                url, headers={"Authorization": f"Bearer {token}", "Accept": "application/json"}
            )
            try:
                with urllib.request.urlopen(  # noqa: S310
                    request, timeout=timeout, context=context
                ) as response:
                    page = json.loads(response.read())
            except urllib.error.HTTPError as exc:
                raise UserError(f"Kubernetes API {plural}: HTTP {exc.code} {exc.reason}") from None
            except (urllib.error.URLError, OSError, json.JSONDecodeError) as exc:
                raise UserError(f"Kubernetes API {plural}: {exc}") from None
            for item in page.get("items", []):
                out.append({**item, "kind": kind})
            cont = str(page.get("metadata", {}).get("continue") or "")
            if not cont:
                break
    return out


def collect_k8s(objects: Sequence[Obj], *, cluster: str, now: int | None = None) -> Collected:
    """One snapshot of a cluster's RBAC from its objects."""
    system = f"k8s:{cluster}"
    entitlements, warnings = rbac_entitlements(objects, system=system)
    accounts: dict[str, Account] = {}
    for e in entitlements:
        if e.principal_kind == "group" or e.principal in accounts:
            continue
        if e.principal_kind == "serviceaccount":
            kind = "service"
        else:
            kind = "system" if e.principal.startswith("system:") else "human"
        accounts[e.principal] = Account(system, e.principal, kind)
    taken_at = now if now is not None else time.time_ns() // 1000
    snapshot = Snapshot(
        uuid7(), system, "k8s", taken_at, tuple(accounts.values()), tuple(entitlements)
    )
    return Collected(snapshot, tuple(warnings))


def rbac_entitlements(
    objects: Iterable[Obj], *, system: str
) -> tuple[list[Entitlement], list[str]]:
    """Bindings resolved to subjects and rules, aggregation applied."""
    warnings: list[str] = []
    cluster_roles: dict[str, Obj] = {}
    roles: dict[tuple[str, str], Obj] = {}
    bindings: list[Obj] = []
    for o in objects:
        meta = o.get("metadata") or {}
        name = str(meta.get("name", ""))
        if o.get("kind") == "ClusterRole":
            cluster_roles[name] = o
        elif o.get("kind") == "Role":
            roles[(str(meta.get("namespace", "")), name)] = o
        elif o.get("kind") in ("RoleBinding", "ClusterRoleBinding"):
            bindings.append(o)
    resolved: dict[str, list[tuple[Obj, str]]] = {}

    def cluster_rules(name: str, stack: frozenset[str] = frozenset()) -> list[tuple[Obj, str]]:
        """(rule, where it came from) for a ClusterRole, aggregation included."""
        if name in resolved:
            return resolved[name]
        role = cluster_roles[name]
        rules = [(r, f"ClusterRole/{name}") for r in role.get("rules") or []]
        selectors = (role.get("aggregationRule") or {}).get("clusterRoleSelectors") or []
        if selectors:
            rules = []  # the controller owns .rules of an aggregated role: recompute them
            for other_name in sorted(cluster_roles):
                other = cluster_roles[other_name]
                if other_name == name or other_name in stack:
                    continue
                labels = (other.get("metadata") or {}).get("labels") or {}
                if any(_selector_matches(s, labels) for s in selectors):
                    rules.extend(cluster_rules(other_name, stack | {name}))
        resolved[name] = rules
        return rules

    out: list[Entitlement] = []
    for b in bindings:
        meta = b.get("metadata") or {}
        ref = b.get("roleRef") or {}
        namespace = str(meta.get("namespace", "")) if b.get("kind") == "RoleBinding" else ""
        binding_name = (
            f"{b.get('kind')}/" + (f"{namespace}/" if namespace else "") + str(meta.get("name", ""))
        )
        ref_name = str(ref.get("name", ""))
        if ref.get("kind") == "ClusterRole" and ref_name in cluster_roles:
            rules = cluster_rules(ref_name)
            role_text = f"ClusterRole/{ref_name}"
        elif ref.get("kind") == "Role" and (namespace, ref_name) in roles:
            role = roles[(namespace, ref_name)]
            role_text = f"Role/{namespace}/{ref_name}"
            rules = [(r, role_text) for r in role.get("rules") or []]
        else:
            warnings.append(f"{binding_name}: {ref.get('kind')}/{ref_name} does not exist")
            continue
        admin = any(_is_admin_rule(r) for r, _ in rules)
        scope = f"namespace:{namespace}" if namespace else "*"
        for subject in b.get("subjects") or []:
            principal, kind = _subject(subject, namespace)
            if principal is None:
                continue
            for rule, origin in rules:
                for privilege, resource_names in _rule_rights(rule):
                    attrs: dict[str, AttributeValue] = {"role": role_text}
                    if origin != role_text:
                        attrs["aggregated_from"] = origin
                    if resource_names:
                        attrs["resource_names"] = resource_names
                    if admin:
                        key = (
                            "namespace_admin_equivalent"
                            if namespace
                            else "cluster_admin_equivalent"
                        )
                        attrs[key] = True
                    out.append(
                        Entitlement(
                            system,
                            principal,
                            kind,
                            privilege,
                            scope,
                            f"{binding_name} ({role_text})",
                            admin or _is_privileged(privilege),
                            attrs,
                        )
                    )
    return out, warnings


def _subject(subject: Obj, namespace: str) -> tuple[str | None, str]:
    kind = subject.get("kind")
    name = str(subject.get("name", ""))
    if kind == "User":
        return name, "user"
    if kind == "Group":
        return name, "group"
    if kind == "ServiceAccount":
        ns = str(subject.get("namespace") or namespace)
        return f"system:serviceaccount:{ns}:{name}", "serviceaccount"
    return None, ""


def _rule_rights(rule: Obj) -> list[tuple[str, str | None]]:
    """(``"verb resource"``, resourceNames) for every verb × resource × group of a rule."""
    verbs = [str(v) for v in rule.get("verbs") or []]
    names = ",".join(str(n) for n in rule.get("resourceNames") or []) or None
    out: list[tuple[str, str | None]] = []
    for url in rule.get("nonResourceURLs") or []:
        out.extend((f"{v} url:{url}", None) for v in verbs)
    for group in rule.get("apiGroups") or ([""] if rule.get("resources") else []):
        for resource in rule.get("resources") or []:
            qualified = str(resource)
            if group and resource != "*":
                head, _, sub = qualified.partition("/")
                qualified = f"{head}.{group}" + (f"/{sub}" if sub else "")
            elif group == "*" and resource == "*":
                qualified = "*"
            out.extend((f"{v} {qualified}", names) for v in verbs)
    return out


def _is_admin_rule(rule: Obj) -> bool:
    verbs = set(rule.get("verbs") or [])
    if verbs & _ESCALATING_VERBS:
        return True
    return (
        "*" in verbs
        and "*" in (rule.get("resources") or [])
        and "*" in (rule.get("apiGroups") or [])
    )


def _is_privileged(privilege: str) -> bool:
    """Rights that lead to cluster-admin by another road (see the module docstring)."""
    verb, _, resource = privilege.partition(" ")
    head, _, sub = resource.partition("/")
    plain = head.split(".", 1)[0]
    target = f"{plain}/{sub}" if sub else plain
    if verb in _ESCALATING_VERBS:
        return True
    if resource == "*":
        return verb in _READ | _WRITE
    if plain == "secrets" and verb in _READ:
        return True
    if target in _SENSITIVE_CREATE and verb in ("create", "get", "*"):
        return True
    return target in _RBAC_OBJECTS and verb in _WRITE


def _selector_matches(selector: Obj, labels: Mapping[str, Any]) -> bool:
    """A Kubernetes label selector: every matchLabels pair and every expression must hold."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key = expr.get("key")
        op = expr.get("operator")
        values = expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True  # as in Kubernetes, an empty selector matches every ClusterRole
