"""OCSF and ECS exports: required attributes per class, allowed values, nothing dropped."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.factories import make_event

from keeptrail.event import Event
from keeptrail.export.ecs import to_ecs
from keeptrail.export.ocsf import to_ocsf
from keeptrail.ingest import Ingestor
from keeptrail.store.sqlite import SQLiteStore

# OCSF 1.3.0: the base event's required attributes, and each class's own.
BASE_REQUIRED = {
    "activity_id",
    "category_uid",
    "class_uid",
    "metadata",
    "severity_id",
    "time",
    "type_uid",
}
CLASS_REQUIRED = {
    0: set(),
    1001: {"actor", "device", "file"},
    1007: {"actor", "device", "process"},
    3001: {"user"},
    3002: {"user"},
    3003: {"user"},
    3005: {"privileges", "user"},
    3006: {"group"},
    6003: {"actor", "api", "src_endpoint"},
    6005: {"actor", "api", "src_endpoint"},
}
ECS_CATEGORIES = {
    "api",
    "authentication",
    "configuration",
    "database",
    "driver",
    "email",
    "file",
    "host",
    "iam",
    "intrusion_detection",
    "library",
    "malware",
    "network",
    "package",
    "process",
    "registry",
    "session",
    "threat",
    "vulnerability",
    "web",
}
ECS_TYPES = {
    "access",
    "admin",
    "allowed",
    "change",
    "connection",
    "creation",
    "deletion",
    "denied",
    "end",
    "error",
    "group",
    "indicator",
    "info",
    "installation",
    "protocol",
    "start",
    "user",
}

SAMPLES = Path(__file__).parents[2] / "src" / "keeptrail" / "samples"


def varied_events() -> list[Event]:
    """One event per category the model has, including ones no parser emits yet."""
    return [
        make_event(),
        make_event(category="session", action="pam.session_close", outcome="success"),
        make_event(
            category="privilege",
            action="sudo.command",
            actor_effective_user="root",
            details={"command": "/bin/ls"},
        ),
        make_event(
            category="account",
            action="user.create",
            target_resource="carol",
            target_resource_type="user",
        ),
        make_event(
            category="account",
            action="group.member_add",
            target_resource="sudo",
            target_resource_type="group",
            details={"member": "carol"},
        ),
        make_event(category="permission", action="grant.add", target_resource="db"),
        make_event(category="api", action="http.request", source_ip=None, source_host=None),
        make_event(category="kubernetes", action="k8s.delete", target_resource="ns/pods/x"),
        make_event(category="database", action="db.ddl", target_system="postgres"),
        make_event(category="file", action="file.access", target_resource="/etc/shadow"),
        make_event(category="process", action="process.exec", details={"command": "id"}),
        make_event(category="audit", action="ledger.verified"),
        make_event(category="unparsed", action="unparsed", actor_name=None),
    ]


@pytest.mark.parametrize("event", varied_events(), ids=lambda e: e.action)
def test_ocsf_documents_carry_every_required_attribute(event: Event) -> None:
    """Each document has the base and class-required attributes, with consistent ids."""
    doc = to_ocsf(event)
    missing = (BASE_REQUIRED | CLASS_REQUIRED[doc["class_uid"]]) - doc.keys()
    assert not missing
    assert doc["type_uid"] == doc["class_uid"] * 100 + doc["activity_id"]
    assert doc["category_uid"] == doc["class_uid"] // 1000
    assert {"version", "product"} <= doc["metadata"].keys()
    assert isinstance(doc["time"], int)
    assert doc["time"] == event.time // 1000
    assert doc["raw_data"] == event.raw


def test_ocsf_keeps_what_it_cannot_map() -> None:
    """Format-specific details are carried in 'unmapped', not dropped."""
    doc = to_ocsf(make_event(details={"key_type": "ED25519", "attempts": 3}))
    assert doc["unmapped"] == {"key_type": "ED25519", "attempts": 3}


def test_ocsf_authentication_maps_actor_source_and_status() -> None:
    """A failed SSH login is an Authentication Logon with failure status and its source."""
    doc = to_ocsf(make_event(actor_auth_method="password"))
    assert (doc["class_uid"], doc["activity_id"], doc["status_id"]) == (3002, 1, 2)
    assert doc["user"] == {"name": "root"}
    assert doc["src_endpoint"] == {"ip": "203.0.113.50", "port": 40022}
    assert doc["status_detail"] == "bad_password"


@pytest.mark.parametrize("event", varied_events(), ids=lambda e: e.action)
def test_ecs_documents_use_allowed_values(event: Event) -> None:
    """event.category and event.type only hold values ECS defines; the original line is kept."""
    doc = to_ecs(event)
    assert set(doc["event"]["category"]) <= ECS_CATEGORIES
    assert set(doc["event"]["type"]) <= ECS_TYPES
    assert doc["@timestamp"].endswith("Z")
    assert doc["event"]["original"] == event.raw
    assert doc["ecs"]["version"]


def test_ecs_maps_sudo_target_user_and_source() -> None:
    """sudo's target user is user.effective; the source address is source.ip."""
    doc = to_ecs(
        make_event(
            category="privilege",
            action="sudo.command",
            actor_name="alice",
            actor_effective_user="root",
        )
    )
    assert doc["user"] == {"name": "alice", "effective": {"name": "root"}}
    assert doc["source"]["ip"] == "203.0.113.50"
    assert set(doc["related"]["user"]) == {"alice", "root"}


def test_every_shipped_sample_event_exports(store: SQLiteStore) -> None:
    """Every event of the shipped samples exports to valid OCSF and ECS documents."""
    ingestor = Ingestor(store, host="t")
    for path in sorted(SAMPLES.glob("*.log")):
        ingestor.ingest_file(path)
    events = store.search(None, limit=1000).events
    assert len(events) > 50
    for e in events:
        doc = to_ocsf(e)
        assert not (BASE_REQUIRED | CLASS_REQUIRED[doc["class_uid"]]) - doc.keys()
        assert set(to_ecs(e)["event"]["category"]) <= ECS_CATEGORIES
