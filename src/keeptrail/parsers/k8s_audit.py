"""Kubernetes API audit log (``audit.k8s.io/v1`` and ``v1beta1`` Event objects, JSON lines).

The API server writes one line per *stage* of a request (``RequestReceived``,
``ResponseStarted``, ``ResponseComplete``, ``Panic``), all sharing the request's
``auditID``. Only the final stage (``ResponseComplete`` or ``Panic``) becomes an event: the
assembler holds earlier stages by ``auditID`` and puts their lines in the final event's
``raw``, so a request is counted once and no line is lost.

A request whose final stage never comes (a stage-only audit policy, ``omitStages:
[ResponseComplete]``, or a long-lived ``exec`` stream still open when the file ends) is not
dropped: when more than ``max_held`` requests are held (the oldest first), and at
:meth:`~K8sAuditAssembler.flush`, it is emitted from its latest stage with
``details.stage`` saying which, and ``outcome: unknown`` unless that stage has a response
code. Memory is bounded by size too: a request holding ``max_lines`` stage lines (a stage
repeated without end) or ``max_chars`` characters, and the oldest requests while all held
lines together exceed ``max_held_chars``, are emitted the same way with ``details.held_limit``
(``lines``, ``chars`` or ``stream``); a later line of that ``auditID`` is held afresh.

The actor is ``user.username`` (the authenticated, real user); an ``impersonatedUser`` is the
effective user. Secrets reads, exec/attach/port-forward into pods, RBAC changes and anonymous
requests carry ``details.sensitive`` (``secret_read``, ``pod_exec``, ``pod_portforward``,
``rbac_change``, ``anonymous``) so a search finds them all.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from keeptrail.event import DetailValue, Event, parse_time, unparsed
from keeptrail.netaddr import canonical_ip
from keeptrail.parsers.base import StreamContext
from keeptrail.parsers.holding import Held, HeldRecords

NAME: Final = "k8s_audit"

_FINAL: Final = frozenset({"ResponseComplete", "Panic"})
_READ_VERBS: Final = frozenset({"get", "list", "watch"})
_WRITE_VERBS: Final = frozenset({"create", "update", "patch", "delete", "deletecollection"})
_SUBRESOURCE_ACTIONS: Final = {
    "exec": "k8s.exec",
    "attach": "k8s.attach",
    "portforward": "k8s.portforward",
    "proxy": "k8s.proxy",
}
_REASONS: Final = {401: "unauthorized", 403: "forbidden", 404: "not_found", 409: "conflict"}


def sniff(line: str) -> bool:
    """Whether a first line is a Kubernetes audit Event (and not journald or app JSON)."""
    head = line.lstrip()
    if not head.startswith("{") or '"kind"' not in head:
        return False
    compact = head.replace(" ", "")
    if '"kind":"Event"' not in compact:
        return False
    return "audit.k8s.io/" in compact or ('"auditID"' in compact and '"stage"' in compact)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _actor_type(username: str) -> str:
    if username == "system:anonymous":
        return "anonymous"
    if username.startswith("system:serviceaccount:"):
        return "service"
    if username.startswith("system:"):
        return "system"
    return "user"


def build(doc: dict[str, Any], host: str | None, fallback_us: int) -> Event:
    """The event for one audit Event object (normally its final stage)."""
    details: dict[str, DetailValue] = {}
    when = doc.get("requestReceivedTimestamp") or doc.get("timestamp") or doc.get("stageTimestamp")
    try:
        time = parse_time(when) if isinstance(when, str) else fallback_us
    except ValueError:
        time = fallback_us
        details["bad_timestamp"] = str(when)[:64]
    verb = _text(doc.get("verb")) or "unknown"
    event = Event(time=time, category="kubernetes", action=f"k8s.{verb}")
    event.target_system = "kubernetes"
    event.target_host = host
    details["verb"] = verb

    user_doc = doc.get("user")
    user: dict[str, Any] = user_doc if isinstance(user_doc, dict) else {}
    username = _text(user.get("username"))
    event.actor_name = username
    event.actor_type = _actor_type(username) if username else None
    groups = user.get("groups")
    if isinstance(groups, list):
        details["groups"] = [g for g in groups if isinstance(g, str)]
    imp = doc.get("impersonatedUser")
    if isinstance(imp, dict) and _text(imp.get("username")):
        event.actor_effective_user = imp["username"]
        imp_groups = imp.get("groups")
        if isinstance(imp_groups, list):
            details["impersonated_groups"] = [g for g in imp_groups if isinstance(g, str)]

    ips = doc.get("sourceIPs")
    if isinstance(ips, list) and ips and isinstance(ips[0], str):
        event.source_ip = canonical_ip(ips[0])
        if event.source_ip is None:
            details["source_ip_text"] = ips[0][:64]
        if len(ips) > 1:
            details["source_ips"] = [ip for ip in ips if isinstance(ip, str)]

    ref = doc.get("objectRef")
    resource = subresource = namespace = name = group = None
    if isinstance(ref, dict):
        resource = _text(ref.get("resource"))
        subresource = _text(ref.get("subresource"))
        namespace = _text(ref.get("namespace"))
        name = _text(ref.get("name"))
        group = _text(ref.get("apiGroup"))
        if name is None:  # create: the name is in the object
            for key in ("responseObject", "requestObject"):
                meta = (
                    (doc.get(key) or {}).get("metadata") if isinstance(doc.get(key), dict) else None
                )
                if isinstance(meta, dict) and _text(meta.get("name")):
                    name = meta["name"]
                    break
        parts = [p for p in (namespace, resource, name, subresource) if p]
        event.target_resource = "/".join(parts) or None
        event.target_resource_type = resource
        for key, value in (
            ("namespace", namespace),
            ("resource", resource),
            ("subresource", subresource),
            ("name", name),
            ("api_group", group),
            ("api_version", _text(ref.get("apiVersion"))),
        ):
            if value is not None:
                details[key] = value
    else:
        uri = _text(doc.get("requestURI"))
        event.target_resource = uri.partition("?")[0] if uri else None
        event.target_resource_type = "path"
    if subresource in _SUBRESOURCE_ACTIONS:
        event.action = _SUBRESOURCE_ACTIONS[subresource]

    status = doc.get("responseStatus")
    code = status.get("code") if isinstance(status, dict) else None
    if isinstance(code, int) and not isinstance(code, bool):
        details["status"] = code
        event.outcome = "failure" if code >= 400 else "success"
        if code >= 400:
            event.reason = _REASONS.get(code, "error")
            event.severity = "low"
    annotations = doc.get("annotations")
    if isinstance(annotations, dict):
        decision = annotations.get("authorization.k8s.io/decision")
        if isinstance(decision, str):
            details["decision"] = decision
            if decision == "forbid":
                event.outcome, event.reason, event.severity = "failure", "forbidden", "low"
    for key, out in (
        ("requestURI", "request_uri"),
        ("userAgent", "user_agent"),
        ("auditID", "audit_id"),
        ("stage", "stage"),
        ("level", "level"),
    ):
        value = _text(doc.get(key))
        if value is not None:
            details[key if key == "stage" else out] = value

    sensitive: str | None = None
    if subresource in ("exec", "attach"):
        sensitive = "pod_exec"
    elif subresource == "portforward":
        sensitive = "pod_portforward"
    elif resource == "secrets" and verb in _READ_VERBS:
        sensitive = "secret_read"
    elif group == "rbac.authorization.k8s.io" and verb in _WRITE_VERBS:
        sensitive, event.severity = "rbac_change", "medium"
    elif event.actor_type == "anonymous":
        sensitive = "anonymous"
    if sensitive is not None:
        details["sensitive"] = sensitive
    if event.actor_type == "anonymous":
        details["anonymous"] = True
    event.details = details
    return event


class _Held(Held):
    __slots__ = ("doc",)

    def __init__(self, doc: dict[str, Any], line: str, start: int) -> None:
        super().__init__(line, start)
        self.doc = doc


class K8sAuditAssembler:
    """Emits one event per request, at its final stage (see the module docstring)."""

    def __init__(
        self,
        ctx: StreamContext,
        *,
        max_held: int = 4096,
        max_lines: int = 64,  # a request has at most three stages before its last
        max_chars: int = 8 << 20,
        max_held_chars: int = 64 << 20,
    ) -> None:
        self._ctx = ctx
        self._held: HeldRecords[str, _Held] = HeldRecords(
            max_lines=max_lines, max_chars=max_chars, max_held_chars=max_held_chars
        )
        self._max_held = max_held

    def feed(self, line: str, start: int) -> list[Event]:
        """Take one line; return the event it completes, if any."""
        if not line or line.isspace():
            return []
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError:
            return [self._unparsed(line, start, "invalid_json")]
        if not isinstance(doc, dict) or doc.get("kind") != "Event":
            return [self._unparsed(line, start, "not_a_k8s_audit_event")]
        audit_id = doc.get("auditID")
        stage = doc.get("stage")
        held_ = self._held
        if isinstance(audit_id, str) and not (isinstance(stage, str) and stage in _FINAL):
            held = held_.get(audit_id)
            if held is None:
                held = _Held(doc, line, start)
                held_.put(audit_id, held)
            else:
                held.doc = doc
                held_.add(held, line)
            out: list[Event] = []
            limit = held_.full(held)
            if limit is not None:
                out.append(self._emit(held_.take(audit_id), limit=limit))
            while len(held_) > self._max_held:
                out.append(self._emit(held_.take(held_.oldest()[0])))
            while held_.over():
                out.append(self._emit(held_.take(held_.oldest()[0]), limit="stream"))
            return out
        if not (isinstance(audit_id, str) and audit_id in held_):
            return [self._emit(_Held(doc, line, start))]
        held = held_.take(audit_id)
        held.doc = doc
        held.lines.append(line)
        return [self._emit(held)]

    def flush(self) -> list[Event]:
        """Emit every request still waiting for its final stage, from its latest stage."""
        return [self._emit(held) for held in self._held.clear()]

    def pending_since(self) -> int | None:
        """Start offset of the oldest held stage line."""
        return self._held.oldest_start()

    def _emit(self, held: _Held, *, limit: str | None = None) -> Event:
        raw = held.raw
        try:
            event = build(held.doc, self._ctx.host, self._ctx.reference_us)
        except (TypeError, ValueError, AttributeError) as exc:
            event = unparsed(raw, self._ctx.reference_us, host=self._ctx.host)
            event.reason = "k8s_mapping_error"
            event.details["error"] = type(exc).__name__
            event.collector_parser = "unparsed"
        else:
            event.collector_parser = NAME
        return held.stamp(event, limit)

    def _unparsed(self, line: str, start: int, reason: str) -> Event:
        event = unparsed(line, self._ctx.reference_us, host=self._ctx.host, reason=reason)
        event.collector_parser = "unparsed"
        event.collector_offset = start
        return event


def assembler(ctx: StreamContext) -> K8sAuditAssembler:
    """A fresh assembler for one Kubernetes audit log stream."""
    return K8sAuditAssembler(ctx)
