"""Events as OCSF 1.3.0 documents (https://schema.ocsf.io/1.3.0/).

The class is chosen from the event's category and action; the activity from the verb. Every
document carries the base event's required attributes (``activity_id``, ``category_uid``,
``class_uid``, ``metadata``, ``severity_id``, ``time``, ``type_uid``) and its class's required
ones. What OCSF has no attribute for goes to ``unmapped`` rather than being dropped, and the
original line to ``raw_data``.
"""

from __future__ import annotations

from typing import Any, Final

from keeptrail import __version__
from keeptrail.event import Event

OCSF_VERSION: Final = "1.3.0"
_SEVERITY: Final = {"info": 1, "low": 2, "medium": 3, "high": 4, "critical": 5}
_STATUS: Final = {"success": 1, "failure": 2}

# class_uid: (category_uid, class name)
_CLASSES: Final = {
    1001: (1, "File System Activity"),
    1007: (1, "Process Activity"),
    3001: (3, "Account Change"),
    3002: (3, "Authentication"),
    3003: (3, "Authorize Session"),
    3005: (3, "User Access Management"),
    3006: (3, "Group Management"),
    6003: (6, "API Activity"),
    6005: (6, "Datastore Activity"),
    0: (0, "Base Event"),
}


def ocsf_class(e: Event) -> tuple[int, int]:
    """(class_uid, activity_id) for an event."""
    action, category = e.action, e.category
    verb = action.rpartition(".")[2]
    if category in ("authentication", "session"):
        if "close" in verb or "logout" in verb or "disconnect" in verb:
            return 3002, 2  # Logoff
        return 3002, 1  # Logon
    if category == "privilege":
        return 3003, 1  # Assign Privileges
    if category == "account":
        if action.startswith("group."):
            return 3006, {"member_add": 3, "member_remove": 4, "create": 5, "delete": 6}.get(
                verb, 99
            )
        activity = {
            "create": 1,
            "password_change": 3,
            "delete": 6,
            "modify": 99,
        }.get(verb, 99)
        return 3001, activity
    if category == "permission":
        return 3005, 1
    if category in ("api", "kubernetes"):
        return 6003, {"create": 1, "get": 2, "list": 2, "update": 3, "patch": 3, "delete": 4}.get(
            verb, 99
        )
    if category == "database":
        return 6005, {"ddl": 99, "query": 2, "login": 99}.get(verb, 99)
    if category == "file":
        return 1001, 99
    if category == "process":
        return 1007, 1  # Launch
    return 0, 99


def to_ocsf(e: Event) -> dict[str, Any]:
    """One OCSF document for one event."""
    class_uid, activity_id = ocsf_class(e)
    category_uid, class_name = _CLASSES[class_uid]
    doc: dict[str, Any] = {
        "activity_id": activity_id,
        "category_uid": category_uid,
        "class_uid": class_uid,
        "class_name": class_name,
        "type_uid": class_uid * 100 + activity_id,
        "time": e.time // 1000,
        "severity_id": _SEVERITY.get(e.severity, 0),
        "status_id": _STATUS.get(e.outcome, 0),
        "status": e.outcome.capitalize(),
        "message": e.action,
        "metadata": {
            "version": OCSF_VERSION,
            "uid": e.id,
            "product": {"name": "Keeptrail", "vendor_name": "Keeptrail", "version": __version__},
            "log_name": e.collector_file or e.collector_source,
            "log_provider": e.collector_parser,
            "logged_time": (e.ingested_at or e.time) // 1000,
            "original_time": None,
        },
        "raw_data": e.raw,
    }
    if e.reason:
        doc["status_detail"] = e.reason
    user = _user(e.actor_name, e.actor_uid)
    actor: dict[str, Any] = {}
    if user:
        actor["user"] = user
    if e.actor_session:
        actor["session"] = {"uid": e.actor_session}
    if actor:
        doc["actor"] = actor
    src = _endpoint(e.source_ip, e.source_port, e.source_host)
    dst = {"hostname": e.target_host} if e.target_host else {}
    if class_uid == 3002:
        doc["user"] = user or {"name": "unknown"}
        if e.actor_auth_method:
            doc["auth_protocol"] = e.actor_auth_method
        doc["is_remote"] = bool(e.source_ip or e.source_host)
        if e.target_system:
            doc["service"] = {"name": e.target_system}
    elif class_uid in (3001, 3005):
        doc["user"] = _user(e.target_resource, None) or {"name": "unknown"}
        if class_uid == 3005:
            doc["privileges"] = [str(e.details.get("privilege", e.action))]
    elif class_uid == 3006:
        doc["group"] = {"name": e.target_resource or "unknown"}
        member = e.details.get("member")
        if member is not None:
            doc["user"] = {"name": str(member)}
    elif class_uid == 3003:
        doc["user"] = _user(e.actor_effective_user, None) or user or {"name": "unknown"}
        doc["privileges"] = [str(e.details.get("command", e.action))]
        doc["session"] = {"uid": e.actor_session or e.id}
    elif class_uid in (6003, 6005):
        doc["actor"] = actor or {"user": {"name": "unknown"}}
        doc["api"] = {"operation": e.action.rpartition(".")[2]}
        doc["src_endpoint"] = src or {"hostname": "unknown"}
        if e.target_resource:
            doc["resources"] = [{"name": e.target_resource, "type": e.target_resource_type}]
        if class_uid == 6005:
            doc["database"] = {"name": e.target_resource or "", "type": e.target_system or ""}
    elif class_uid in (1001, 1007):
        doc["actor"] = actor or {"user": {"name": "unknown"}}
        doc["device"] = {"hostname": e.target_host or "unknown", "type_id": 0}
        if class_uid == 1001:
            doc["file"] = {"name": e.target_resource or "", "type_id": 0}
        else:
            doc["process"] = {"cmd_line": str(e.details.get("command", ""))}
    if src:
        doc["src_endpoint"] = src
    if dst:
        doc["dst_endpoint"] = dst
    if e.details:
        doc["unmapped"] = dict(e.details)
    doc["metadata"] = {k: v for k, v in doc["metadata"].items() if v is not None}
    return doc


def _user(name: str | None, uid: int | None) -> dict[str, Any]:
    user: dict[str, Any] = {}
    if name:
        user["name"] = name
    if uid is not None:
        user["uid"] = str(uid)
    return user


def _endpoint(ip: str | None, port: int | None, host: str | None) -> dict[str, Any]:
    ep: dict[str, Any] = {}
    if ip:
        ep["ip"] = ip
    if port is not None:
        ep["port"] = port
    if host:
        ep["hostname"] = host
    return ep
