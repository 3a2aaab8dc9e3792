"""The Kubernetes audit parser: final stages only, actors, sensitive requests, Falco's samples."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keeptrail.event import Event
from keeptrail.parsers import k8s_audit
from keeptrail.parsers.base import StreamContext

DATA = Path(__file__).resolve().parent.parent / "data"
TRACES = DATA / "falco/test/trace_files/k8s_audit"


def run(lines: list[str], **kwargs: int) -> list[Event]:
    """All events an assembler emits for these lines, flush included."""
    a = k8s_audit.K8sAuditAssembler(StreamContext(reference_us=0, host="api1"), **kwargs)
    out: list[Event] = []
    offset = 0
    for line in lines:
        out += a.feed(line, offset)
        offset += len(line.encode()) + 1
    return out + a.flush()


def trace(name: str) -> list[Event]:
    """The events of one Falco trace file."""
    return run((TRACES / name).read_text().splitlines())


def record(stage: str, **extra: object) -> str:
    """One audit Event line for a fixed request at the given stage."""
    doc: dict[str, object] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": "a-1",
        "stage": stage,
        "requestURI": "/api/v1/namespaces/prod/secrets/db",
        "verb": "get",
        "user": {"username": "alice", "groups": ["dev", "system:authenticated"]},
        "sourceIPs": ["10.0.0.7", "172.16.0.1"],
        "userAgent": "kubectl/v1.29.0",
        "objectRef": {"resource": "secrets", "namespace": "prod", "name": "db", "apiVersion": "v1"},
        "requestReceivedTimestamp": "2024-03-01T10:00:00.123456Z",
        "stageTimestamp": "2024-03-01T10:00:00.200000Z",
    }
    doc.update(extra)
    return orjson.dumps(doc).decode()


def test_stages_are_counted_once_with_all_lines_in_raw() -> None:
    """RequestReceived then ResponseComplete give one event whose raw holds both lines."""
    lines = [record("RequestReceived"), record("ResponseComplete", responseStatus={"code": 200})]
    [e] = run(lines)
    assert (e.category, e.action, e.outcome) == ("kubernetes", "k8s.get", "success")
    assert (e.actor_name, e.actor_type, e.source_ip) == ("alice", "user", "10.0.0.7")
    assert e.target_resource == "prod/secrets/db"
    assert e.details["sensitive"] == "secret_read"
    assert e.details["groups"] == ["dev", "system:authenticated"]
    assert e.details["source_ips"] == ["10.0.0.7", "172.16.0.1"]
    assert (e.details["stage"], e.details["status"]) == ("ResponseComplete", 200)
    assert e.raw == "\n".join(lines)
    assert e.time == 1709287200123456
    assert (e.collector_offset, e.collector_parser, e.target_host) == (0, "k8s_audit", "api1")


def test_pending_stage_holds_resume_offset() -> None:
    """A held early stage keeps pending_since at its offset until the final stage arrives."""
    a = k8s_audit.assembler(StreamContext(reference_us=0))
    assert a.feed(record("RequestReceived"), 40) == []
    assert a.pending_since() == 40
    assert len(a.feed(record("ResponseComplete"), 900)) == 1
    assert a.pending_since() is None


def test_stage_only_requests_are_emitted_at_flush_or_bound() -> None:
    """Requests without a final stage are emitted from their latest stage, never dropped."""
    lines = [
        record("ResponseStarted", auditID=f"id-{i}", responseStatus={"code": 101}) for i in range(5)
    ]
    events = run(lines, max_held=2)
    assert sorted(e.details["audit_id"] for e in events) == [f"id-{i}" for i in range(5)]
    assert all(e.details["stage"] == "ResponseStarted" for e in events)


def test_forbidden_impersonation() -> None:
    """An impersonated request keeps the real actor; 403 is a forbidden failure."""
    line = record(
        "ResponseComplete",
        impersonatedUser={"username": "system:admin", "groups": ["system:masters"]},
        responseStatus={"code": 403, "reason": "Forbidden"},
    )
    [e] = run([line])
    assert (e.actor_name, e.actor_effective_user) == ("alice", "system:admin")
    assert (e.outcome, e.reason, e.severity) == ("failure", "forbidden", "low")
    assert e.details["impersonated_groups"] == ["system:masters"]


def test_hostile_source_ip_does_not_move_source() -> None:
    """A sourceIPs entry that is not an address is kept as text, not as source.ip."""
    [e] = run([record("ResponseComplete", sourceIPs=["1.2.3.4 evil"])])
    assert e.source_ip is None
    assert e.details["source_ip_text"] == "1.2.3.4 evil"


def test_invalid_lines_are_unparsed() -> None:
    """Falco's deliberately invalid sample and non-JSON lines become unparsed events."""
    [e] = trace("fal_01_003.json")
    assert (e.category, e.reason, e.raw) == ("unparsed", "not_a_k8s_audit_event", '{"kind": 0}')
    [e] = run(["{not json"])
    assert e.reason == "invalid_json"


def test_sniff() -> None:
    """sniff accepts audit Events (v1, v1beta1, and Falco's apiVersion-less ones) only."""
    for path in TRACES.glob("*.json"):
        first = path.read_text().splitlines()[0]
        assert k8s_audit.sniff(first) == (path.name != "fal_01_003.json"), path.name
    assert not k8s_audit.sniff('{"__REALTIME_TIMESTAMP":"1","MESSAGE":"kind Event"}')
    assert not k8s_audit.sniff('{"schema":"keeptrail.event/v1","kind":"Event"}')
    assert not k8s_audit.sniff("type=SYSCALL msg=audit(1.0:1): x=1")


def _falco_expectations() -> list[tuple[str, str]]:
    text = (DATA / "falco/test/falco_k8s_audit_tests.yaml").read_text()
    pairs = []
    for block in re.split(r"\n  (?=\w)", text):
        files = re.findall(r"trace_files/k8s_audit/([\w.-]+\.json)", block)
        rules = re.findall(r"^\s+- ([^:\n]+): \d+$", block, re.M)
        pairs += [(files[0], rule) for rule in rules if files]
    return pairs


# Falco rule -> what our event says about the same request.
def _check(rule: str, events: list[Event]) -> None:
    actions = {e.action for e in events}
    sensitive = {e.details.get("sensitive") for e in events}
    if rule == "Attach/Exec Pod":
        assert actions & {"k8s.exec", "k8s.attach"}
        assert "pod_exec" in sensitive
    elif rule == "Anonymous Request Allowed":
        assert any(e.actor_type == "anonymous" and e.outcome == "success" for e in events)
    elif "Role" in rule or "ClusterRole" in rule:
        assert "rbac_change" in sensitive
    elif rule.endswith("Created") or rule.startswith("Create"):
        assert "k8s.create" in actions
    elif rule.endswith("Deleted"):
        assert "k8s.delete" in actions
    elif rule.startswith("System ClusterRole"):
        assert "rbac_change" in sensitive


@pytest.mark.parametrize(("name", "rule"), _falco_expectations())
def test_falco_rule_samples(name: str, rule: str) -> None:
    """Each request Falco's rule fires on is visible in our event's action, actor or flags."""
    events = trace(name)
    assert events
    assert all(e.category == "kubernetes" for e in events)
    _check(rule, events)


def test_every_trace_file_loses_nothing() -> None:
    """Across all Falco traces, every line is in exactly one event's raw."""
    total_lines = total_raw = 0
    for path in TRACES.glob("*.json"):
        lines = [x for x in path.read_text().splitlines() if x.strip()]
        events = run(lines)
        total_lines += len(lines)
        total_raw += sum(len(e.raw.split("\n")) for e in events)
    assert total_lines == total_raw == 52


@settings(max_examples=100)
@given(
    st.lists(
        st.one_of(
            st.text(),
            st.sampled_from(
                [record("RequestReceived"), record("ResponseComplete"), record("Panic")]
            ),
            st.dictionaries(
                st.sampled_from(
                    [
                        "kind",
                        "auditID",
                        "stage",
                        "user",
                        "objectRef",
                        "sourceIPs",
                        "responseStatus",
                        "verb",
                    ]
                ),
                st.one_of(
                    st.none(),
                    st.integers(-(2**63), 2**63 - 1),
                    st.text(),
                    st.lists(st.text()),
                    st.just("Event"),
                    st.dictionaries(st.text(), st.text()),
                ),
            ).map(lambda d: orjson.dumps({"kind": "Event", **d}).decode()),
        ),
        max_size=12,
    )
)
def test_never_raises_never_loses(lines: list[str]) -> None:
    """Arbitrary lines and odd Event objects never raise, and every line lands in some raw."""
    lines = [line.replace("\n", " ").replace("\r", " ") for line in lines]
    events = run(lines, max_held=2)
    raws = [r for e in events for r in e.raw.split("\n")]
    assert sorted(raws) == sorted(line for line in lines if line.strip())


def test_a_request_that_never_completes_cannot_hold_lines_without_end() -> None:
    """One auditID repeating a stage is emitted every ``max_lines`` lines, nothing lost."""
    a = k8s_audit.K8sAuditAssembler(StreamContext(reference_us=0), max_lines=64)
    lines = [record("ResponseStarted")] * 200
    emitted: list[Event] = []
    for i, line in enumerate(lines):
        emitted += a.feed(line, i * 1000)
    assert [len(e.raw.split("\n")) for e in emitted] == [64, 64, 64]
    assert all(e.details["held_limit"] == "lines" for e in emitted)
    assert a.pending_since() == 192 * 1000
    rest = a.flush()
    assert "held_limit" not in rest[0].details
    assert sum(len(e.raw.split("\n")) for e in [*emitted, *rest]) == 200


def test_held_characters_are_bounded_per_request_and_per_stream() -> None:
    """A request past ``max_chars``, and the oldest requests past ``max_held_chars``, go out."""
    one = record("RequestReceived")
    a = k8s_audit.K8sAuditAssembler(
        StreamContext(reference_us=0), max_chars=3 * len(one), max_held_chars=10 * len(one)
    )
    out = [e for _ in range(3) for e in a.feed(one, 0)]
    assert [e.details["held_limit"] for e in out] == ["chars"]
    for n in range(12):
        out += a.feed(record("RequestReceived", auditID=f"id-{n}"), n)
    stream = [e for e in out if e.details.get("held_limit") == "stream"]
    assert len(stream) >= 2  # the oldest first, until what is held fits again
    assert [e.details["audit_id"] for e in stream] == [f"id-{n}" for n in range(len(stream))]
    held = a.flush()
    assert len(held) == 12 - len(stream)
    assert sum(len(e.raw) for e in held) <= 10 * len(one)
