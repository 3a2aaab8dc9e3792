"""Keeptrail's application event schema: valid events, named problems, and the JSON Schema file."""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keeptrail.event import Event
from keeptrail.parsers import app_json
from keeptrail.parsers.base import StreamContext

GOOD: dict[str, Any] = {
    "schema": "keeptrail.event/v1",
    "id": "01900000-0000-7000-8000-000000000001",
    "time": "2024-03-01T11:00:00.250+01:00",
    "category": "api",
    "action": "billing.invoice_export",
    "outcome": "failure",
    "reason": "denied",
    "severity": "medium",
    "actor": {"name": "alice", "uid": 1000, "type": "user", "session": "s-1"},
    "source": {"ip": "2001:db8:0:0::1", "port": 51000, "host": "laptop"},
    "target": {"system": "billing", "resource": "invoice/42", "resource_type": "invoice"},
    "details": {"format": "csv", "rows": 1200, "dry_run": False, "tags": ["q1"], "note": None},
}


def feed(doc: Any) -> Event:
    """The one event an app_json assembler makes of this document."""
    line = doc if isinstance(doc, str) else json.dumps(doc)  # json: 2**64 must be writable
    [event] = app_json.assembler(StreamContext(reference_us=7)).feed(line, 3)
    return event


def with_(**changes: Any) -> dict[str, Any]:
    """GOOD with top-level keys replaced (None removes the key)."""
    doc = dict(GOOD)
    for key, value in changes.items():
        if value is None:
            doc.pop(key, None)
        else:
            doc[key] = value
    return doc


def test_valid_event_maps_every_field() -> None:
    """A complete valid event fills the model; time is normalised to UTC µs, the IP canonical."""
    e = feed(GOOD)
    assert (e.category, e.action, e.outcome, e.reason, e.severity) == (
        "api",
        "billing.invoice_export",
        "failure",
        "denied",
        "medium",
    )
    assert e.time == 1709287200250000
    assert e.id == GOOD["id"]
    assert (e.actor_name, e.actor_uid, e.actor_type, e.actor_session) == (
        "alice",
        1000,
        "user",
        "s-1",
    )
    assert (e.source_ip, e.source_port, e.source_host) == ("2001:db8::1", 51000, "laptop")
    assert (e.target_system, e.target_resource) == ("billing", "invoice/42")
    assert e.details == GOOD["details"]
    assert (e.collector_parser, e.collector_offset) == ("app_json", 3)
    assert e.raw == json.dumps(GOOD)


def test_minimal_event_defaults() -> None:
    """Only schema, time, category and action are required; outcome defaults to unknown."""
    e = feed(
        {
            "schema": "keeptrail.event/v1",
            "time": "2024-03-01T10:00:00Z",
            "category": "audit",
            "action": "app.start",
        }
    )
    assert (e.outcome, e.severity, e.id, e.details) == ("unknown", "info", "", {})


PROBLEMS = [
    (with_(details={"latency": 0.25}), "details.latency: floats are not allowed"),
    (with_(details={"big": 2**64}), "details.big: floats are not allowed"),
    (with_(details={"nested": {"a": 1}}), "details.nested: nested objects are not allowed"),
    (with_(details={"mixed": ["a", 1]}), "details.mixed: a list may only hold strings"),
    (with_(time="2024-03-01 10:00:00"), "time: must be RFC 3339"),
    (with_(time="2024-03-01T10:00:00"), "time: must be RFC 3339"),
    (with_(time="2024-02-30T10:00:00Z"), "time: day is out of range"),
    (with_(category="network"), "category: must be one of"),
    (with_(action="Login"), "action: must be dotted lowercase"),
    (with_(outcome="ok"), "outcome: must be"),
    (with_(id="not-a-uuid"), "id: must be a lowercase UUIDv7"),
    (with_(id="6ba7b810-9dad-41d1-80b4-00c04fd430c8"), "id: must be a lowercase UUIDv7"),
    (with_(schema="keeptrail.event/v2"), 'schema: must be "keeptrail.event/v1"'),
    (with_(action=None), "action: required"),
    (with_(extra=1), "extra: unknown field"),
    (with_(actor={"nmae": "x"}), "actor.nmae: unknown field"),
    (with_(actor={"uid": "1000"}), "actor.uid: must be an integer"),
    (with_(actor={"uid": 1.5}), "actor.uid: floats are not allowed"),
    (with_(actor={"type": "robot"}), "actor.type: must be one of"),
    (with_(source={"ip": "1.2.3.4 from 5.6.7.8"}), "source.ip: not an IP address"),
    (with_(source={"port": 70000}), "source.port: must be an integer from 0 to 65535"),
    (with_(actor={"name": ""}), "actor.name: must be 1 to"),
    ([GOOD], "the line must be a JSON object"),
    ("{oops", "not JSON"),
]


@pytest.mark.parametrize(("doc", "problem"), PROBLEMS)
def test_invalid_events_are_unparsed_with_named_problem(doc: Any, problem: str) -> None:
    """Each invalid event is kept as unparsed, and details.problem names field and fault."""
    e = feed(doc)
    assert (e.category, e.reason, e.collector_parser) == (
        "unparsed",
        "invalid_app_event",
        "unparsed",
    )
    assert str(e.details["problem"]).startswith(problem), e.details["problem"]
    assert e.raw
    assert e.collector_offset == 3


def test_sniff_only_takes_the_marker() -> None:
    """sniff needs the schema marker; k8s audit and journald lines are not app events."""
    assert app_json.sniff(orjson.dumps(GOOD).decode())
    assert app_json.sniff('{"time": "x", "schema": "keeptrail.event/v1"}')
    assert not app_json.sniff('{"kind":"Event","apiVersion":"audit.k8s.io/v1"}')
    assert not app_json.sniff('{"__REALTIME_TIMESTAMP":"1","MESSAGE":"x"}')


# --- the JSON Schema file agrees with the hand validation -----------------------------------


def _schema() -> dict[str, Any]:
    text = resources.files("keeptrail").joinpath("schemas/app-event-v1.json").read_text()
    return json.loads(text)  # type: ignore[no-any-return]


def _valid(schema: dict[str, Any], value: Any, root: dict[str, Any]) -> bool:
    """A small interpreter for the JSON Schema keywords the schema file uses."""
    if "$ref" in schema:
        schema = root["$defs"][schema["$ref"].rpartition("/")[2]]
    if "anyOf" in schema:
        return any(_valid(s, value, root) for s in schema["anyOf"])
    if "const" in schema and value != schema["const"]:
        return False
    if "enum" in schema and value not in schema["enum"]:
        return False
    types = schema.get("type")
    if types is not None:
        names = types if isinstance(types, list) else [types]
        checks = {
            "string": lambda v: isinstance(v, str),
            "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
            "boolean": lambda v: isinstance(v, bool),
            "null": lambda v: v is None,
            "object": lambda v: isinstance(v, dict),
            "array": lambda v: isinstance(v, list),
        }
        if not any(checks[n](value) for n in names):
            return False
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", 1e9):
            return False
        if "pattern" in schema and re.search(schema["pattern"], value) is None:
            return False
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and not schema.get("minimum", -(2**70)) <= value <= schema.get("maximum", 2**70)
    ):
        return False
    if isinstance(value, list) and "items" in schema:
        return all(_valid(schema["items"], v, root) for v in value)
    if isinstance(value, dict):
        if len(value) > schema.get("maxProperties", 1e9):
            return False
        props = schema.get("properties", {})
        if any(k not in value for k in schema.get("required", [])):
            return False
        for key, item in value.items():
            sub = props.get(key, schema.get("additionalProperties", True))
            if sub is False or (isinstance(sub, dict) and not _valid(sub, item, root)):
                return False
    return True


# JSON Schema cannot say these; the hand validation checks them on top.
BEYOND_SCHEMA = {"time: day is out of range", "source.ip: not an IP address", "not JSON"}


@pytest.mark.parametrize(("doc", "problem"), [(GOOD, None), *PROBLEMS])
def test_schema_file_agrees_with_hand_validation(doc: Any, problem: str | None) -> None:
    """The published JSON Schema accepts exactly the examples the parser accepts."""
    if problem is not None and any(problem.startswith(p) for p in BEYOND_SCHEMA):
        return
    if isinstance(doc, str):
        return
    schema = _schema()
    # JSON Schema counts 2**64 as an integer; JSON parsers without big ints read a float.
    if problem == "details.big: floats are not allowed":
        assert not _valid(schema, {**doc, "details": {"big": float(2**64)}}, schema)
        return
    assert _valid(schema, doc, schema) == (problem is None)


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=200)
@given(st.dictionaries(st.sampled_from([*GOOD, "x"]), JSON_VALUES, max_size=8), st.text())
def test_never_raises_never_loses(doc: dict[str, Any], junk: str) -> None:
    """Arbitrary objects and text never raise, and each line is one event with that raw."""
    for line in (orjson.dumps({**GOOD, **doc}).decode(), junk.replace("\n", " ")):
        if line.strip():
            e = feed(line)
            assert e.raw == line
