"""Events as Elastic Common Schema 8.x documents.

``event.category`` and ``event.type`` use ECS's allowed values, picked from our category and
verb; everything format-specific stays under ``keeptrail.details`` rather than being guessed
into ECS fields it does not mean.
"""

from __future__ import annotations

from typing import Any, Final

from keeptrail.event import Event, format_time

ECS_VERSION: Final = "8.11.0"

_CATEGORY: Final = {
    "authentication": ["authentication"],
    "session": ["session"],
    "privilege": ["iam", "process"],
    "account": ["iam"],
    "permission": ["iam"],
    "api": ["web"],
    "database": ["database"],
    "file": ["file"],
    "process": ["process"],
    "kubernetes": ["api"],
    "config": ["configuration"],
    "audit": ["configuration"],
}


def _types(e: Event) -> list[str]:
    verb = e.action.rpartition(".")[2]
    if e.category == "account":
        if e.action.startswith("group."):
            return ["group", "change" if verb not in ("create", "delete") else _crud(verb)]
        return ["user", _crud(verb)]
    if e.category == "session":
        return ["end" if ("close" in verb or "logout" in verb or "disconnect" in verb) else "start"]
    if e.category == "authentication":
        return ["start"] if e.outcome == "success" else ["info"]
    if e.category in {"process", "privilege"}:
        return ["start"]
    return ["access"] if e.category in ("api", "database", "file", "kubernetes") else ["info"]


def _crud(verb: str) -> str:
    return {"create": "creation", "delete": "deletion"}.get(verb, "change")


def to_ecs(e: Event) -> dict[str, Any]:
    """One ECS document for one event."""
    doc: dict[str, Any] = {
        "@timestamp": format_time(e.time),
        "ecs": {"version": ECS_VERSION},
        "message": e.raw,
        "event": {
            "id": e.id,
            "kind": "event",
            "category": _CATEGORY.get(e.category, []),
            "type": _types(e),
            "action": e.action,
            "outcome": e.outcome,
            "severity": ("info", "low", "medium", "high", "critical").index(e.severity)
            if e.severity in ("info", "low", "medium", "high", "critical")
            else 0,
            "original": e.raw,
        },
    }
    if e.ingested_at is not None:
        doc["event"]["ingested"] = format_time(e.ingested_at)
    if e.reason:
        doc["event"]["reason"] = e.reason
    user: dict[str, Any] = {}
    if e.actor_name:
        user["name"] = e.actor_name
    if e.actor_uid is not None:
        user["id"] = str(e.actor_uid)
    if e.actor_effective_user:
        user["effective"] = {"name": e.actor_effective_user}
    if e.target_resource and e.target_resource_type == "user":
        user["target"] = {"name": e.target_resource}
    if e.target_resource and e.target_resource_type == "group":
        user.setdefault("target", {})["group"] = {"name": e.target_resource}
    if user:
        doc["user"] = user
    source: dict[str, Any] = {}
    if e.source_ip:
        source["ip"] = e.source_ip
        source["address"] = e.source_ip
    if e.source_port is not None:
        source["port"] = e.source_port
    if e.source_host:
        source["domain"] = e.source_host
        source.setdefault("address", e.source_host)
    if source:
        doc["source"] = source
    if e.target_host:
        doc["host"] = {"name": e.target_host}
    if e.target_system:
        doc["service"] = {"name": e.target_system}
    log: dict[str, Any] = {}
    if e.collector_file:
        log["file"] = {"path": e.collector_file}
    if e.collector_offset is not None:
        log["offset"] = e.collector_offset
    if log:
        doc["log"] = log
    related_users = [u for u in (e.actor_name, e.actor_effective_user, e.target_resource) if u]
    related: dict[str, Any] = {}
    if related_users and e.target_resource_type in (None, "user"):
        related["user"] = sorted(set(related_users))
    elif e.actor_name:
        related["user"] = [e.actor_name]
    if e.source_ip:
        related["ip"] = [e.source_ip]
    if related:
        doc["related"] = related
    if e.details:
        doc["keeptrail"] = {"details": dict(e.details), "parser": e.collector_parser}
    return doc
