"""Detection rules: YAML documents to validated, compiled :class:`Rule` values.

A rule is a search query (``match``, the same language as ``keeptrail search``, compiled with
:func:`keeptrail.query.compile_predicate` so a rule and a search never disagree on what
matches) plus at most one *stateful clause* saying when matching events become an alert:

- none: every matching event fires;
- ``threshold`` (+ ``window``): N matching events per key within the window;
- ``distinct`` (+ ``window``): N distinct values of a field per key within the window;
- ``sequence`` (+ ``window``): ``first`` (N times) then ``then``, same key, within the window;
- ``first_seen``: a value never seen for this key, once a learning period has passed;
- ``dormant``: a key active again after a long silence;
- ``baseline``: a key's activity per bucket far above its learned mean;
- ``travel``: two logins of one key too far apart for the time between them (GeoIP);
- ``silence``: a key (host, source) that stopped sending (evaluated on the clock).

``schedule``, ``allow`` and ``suppress`` refine any of them. Validation is strict and every
message names the file, the rule and the field, because a rule that silently never fires is
the worst kind of bug a detection system can have.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from keeptrail.errors import UserError
from keeptrail.event import Event
from keeptrail.query.errors import QueryError
from keeptrail.query.fields import Field, Kind, resolve_field
from keeptrail.query.parse import parse
from keeptrail.query.predicate import Predicate, compile_predicate, detail_texts
from keeptrail.query.timerange import parse_duration
from keeptrail.query.tree import And, Node, OneOf, Or, TextMatch

RULE_SEVERITIES: Final = ("low", "medium", "high", "critical")
_ID: Final = re.compile(r"[a-z0-9][a-z0-9_.\-]{0,95}")
_TAG: Final = re.compile(r"[a-z0-9_]+(\.[a-z0-9_\-]+)+")
_DAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_KNOWN: Final = frozenset(
    {
        "id",
        "title",
        "description",
        "severity",
        "tags",
        "match",
        "group_by",
        "window",
        "threshold",
        "distinct",
        "sequence",
        "first_seen",
        "dormant",
        "baseline",
        "travel",
        "silence",
        "schedule",
        "suppress",
        "allow",
        "reason",
        "on_alerts",
        "enabled",
        "references",
    }
)
STATEFUL: Final = (
    "threshold",
    "distinct",
    "sequence",
    "first_seen",
    "dormant",
    "baseline",
    "travel",
    "silence",
)
Getter = Callable[[Event], str | None]


def field_getter(f: Field) -> Getter:
    """The value of a field of an event as text (the form keys and sets hold), or None."""
    if f.kind is Kind.DETAIL:
        key = f.key or ""

        def detail(event: Event) -> str | None:
            texts = detail_texts(event.details.get(key))
            return texts[0] if texts else None

        return detail
    attr = f.attr

    def plain(event: Event) -> str | None:
        value = getattr(event, attr)
        if value is None or value == "":
            return None
        return str(value)

    return plain


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a sequence: its own query and how many times it must occur."""

    query: str
    predicate: Predicate
    threshold: int = 1


@dataclass(frozen=True, slots=True)
class Schedule:
    """Business hours: days and a daily ``[start, end)`` in minutes, in a zone.

    ``fire`` is ``outside`` (the rule fires for events outside these hours, the usual
    off-hours rule) or ``inside``.
    """

    days: frozenset[int]
    start: int
    end: int
    tz: ZoneInfo
    fire: str = "outside"

    def inside(self, micros: int) -> bool:
        from datetime import datetime  # noqa: PLC0415  # only rules with a schedule pay

        local = datetime.fromtimestamp(micros / 1_000_000, self.tz)
        minute = local.hour * 60 + local.minute
        return local.weekday() in self.days and self.start <= minute < self.end

    def fires(self, micros: int) -> bool:
        return self.inside(micros) != (self.fire == "outside")


@dataclass(frozen=True, slots=True)
class Allow:
    """An allow-list entry: a field whose value is in ``values``, or a query that matches."""

    describe: str
    test: Predicate


@dataclass(frozen=True, slots=True)
class Rule:
    """A validated rule, ready for the engine. Durations are microseconds."""

    id: str
    title: str
    description: str
    severity: str
    tags: tuple[str, ...]
    match: str
    tree: Node
    predicate: Predicate
    source: str
    group_by: tuple[str, ...] = ()
    group_getters: tuple[Getter, ...] = ()
    window: int | None = None
    threshold: int | None = None
    distinct_field: str | None = None
    distinct_getter: Getter | None = None
    distinct_count: int | None = None
    first: Step | None = None
    then: Step | None = None
    seen_field: str | None = None
    seen_getter: Getter | None = None
    learning: int = 0
    dormant_after: int | None = None
    baseline_bucket: int | None = None
    baseline_factor: float = 5.0
    baseline_min: int = 20
    travel_speed_kmh: float | None = None
    travel_min_km: float = 300.0
    silence_after: int | None = None
    schedule: Schedule | None = None
    suppress: int | None = None
    allow: tuple[Allow, ...] = ()
    reason: str | None = None
    on_alerts: bool = False
    enabled: bool = True
    pins: frozenset[Pin] | None = field(default=None, compare=False)

    @property
    def kind(self) -> str:
        """Which stateful clause the rule uses, or ``instant``."""
        if self.threshold is not None:
            return "threshold"
        if self.distinct_count is not None:
            return "distinct"
        if self.then is not None:
            return "sequence"
        if self.seen_field is not None:
            return "first_seen"
        if self.dormant_after is not None:
            return "dormant"
        if self.baseline_bucket is not None:
            return "baseline"
        if self.travel_speed_kmh is not None:
            return "travel"
        if self.silence_after is not None:
            return "silence"
        return "instant"

    @property
    def fingerprint(self) -> str:
        """What the rule's state depends on; the engine drops the state when it changes."""
        parts = (
            self.kind,
            self.match,
            self.group_by,
            self.window,
            self.threshold,
            self.distinct_field,
            self.distinct_count,
            self.first.query if self.first else None,
            self.first.threshold if self.first else None,
            self.then.query if self.then else None,
            self.seen_field,
            self.learning,
            self.dormant_after,
            self.baseline_bucket,
            self.silence_after,
        )
        return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]

    @property
    def group_window(self) -> int:
        """How long firings for one key keep updating the same alert."""
        return self.suppress or self.window or 3_600_000_000

    def key_of(self, event: Event) -> dict[str, str]:
        """The group-by values of an event; a missing value is ``""`` (one group of its own).

        An event is never dropped for lacking a group-by field: a rule that silently skips
        events (auditd records without a host name, say) is worse than a coarser group.
        """
        return {
            name: get(event) or ""
            for name, get in zip(self.group_by, self.group_getters, strict=True)
        }

    def allowed(self, event: Event) -> bool:
        return any(a.test(event) for a in self.allow)


class RuleError(UserError):
    """An invalid rule; the message names the file, the rule id and the field."""


class _Ctx:
    """Where a rule came from, for messages."""

    def __init__(self, source: str, rule_id: str | None) -> None:
        self.source = source
        self.rule_id = rule_id

    def fail(self, where: str, problem: str) -> RuleError:
        rule = f"rule {self.rule_id!r}" if self.rule_id else "rule"
        return RuleError(f"{self.source}: {rule}: {where}: {problem}")


def parse_rule(doc: object, *, source: str) -> Rule:
    """Validate one rule document (a mapping from YAML) and compile it."""
    if not isinstance(doc, Mapping):
        raise RuleError(f"{source}: a rule must be a mapping, not {type(doc).__name__}")
    raw_id = doc.get("id")
    ctx = _Ctx(source, raw_id if isinstance(raw_id, str) else None)
    unknown = sorted(str(k) for k in doc if k not in _KNOWN)
    if unknown:
        raise ctx.fail(unknown[0], f"unknown field; valid fields: {', '.join(sorted(_KNOWN))}")
    rule_id = _text(ctx, doc, "id")
    if not _ID.fullmatch(rule_id):
        raise ctx.fail("id", "use lowercase letters, digits, '.', '_' and '-' (at most 96)")
    title = _text(ctx, doc, "title")
    description = _text(ctx, doc, "description", required=False) or ""
    severity = _text(ctx, doc, "severity")
    if severity not in RULE_SEVERITIES:
        raise ctx.fail("severity", f"{severity!r} is not one of {', '.join(RULE_SEVERITIES)}")
    tags = tuple(_text_list(ctx, doc, "tags"))
    for tag in tags:
        if not _TAG.fullmatch(tag):
            raise ctx.fail("tags", f"{tag!r} is not a dotted lowercase tag like attack.t1110.001")
    match = _text(ctx, doc, "match")
    tree = _query(ctx, "match", match)
    values: dict[str, Any] = {
        "id": rule_id,
        "title": title,
        "description": description,
        "severity": severity,
        "tags": tags,
        "match": match,
        "tree": tree,
        "predicate": compile_predicate(tree),
        "source": source,
        "pins": required_pins(tree),
    }
    group_by = _text_list(ctx, doc, "group_by")
    values["group_by"] = tuple(_field(ctx, "group_by", g).name for g in group_by)
    values["group_getters"] = tuple(field_getter(_field(ctx, "group_by", g)) for g in group_by)
    clauses = [c for c in STATEFUL if doc.get(c) is not None]
    if len(clauses) > 1:
        raise ctx.fail(clauses[1], f"a rule has at most one of {', '.join(STATEFUL)}")
    if "window" in doc:
        values["window"] = _duration(ctx, doc["window"], "window")
    needs_window = {"threshold", "distinct", "sequence"} & set(clauses)
    if needs_window and values.get("window") is None:
        raise ctx.fail("window", f"required with {clauses[0]} (e.g. window: 10m)")
    if clauses:
        _clause(ctx, clauses[0], doc[clauses[0]], values)
    if doc.get("schedule") is not None:
        values["schedule"] = _schedule(ctx, doc["schedule"])
    if doc.get("suppress") is not None:
        values["suppress"] = _duration(ctx, doc["suppress"], "suppress")
    if doc.get("allow") is not None:
        values["allow"] = _allow(ctx, doc["allow"])
    if doc.get("reason") is not None:
        values["reason"] = _text(ctx, doc, "reason")
    for flag in ("on_alerts", "enabled"):
        if flag in doc:
            if not isinstance(doc[flag], bool):
                raise ctx.fail(flag, "must be true or false")
            values[flag] = doc[flag]
    return Rule(**values)


def _clause(ctx: _Ctx, name: str, spec: Any, values: dict[str, Any]) -> None:
    if name == "threshold":
        values["threshold"] = _positive(ctx, spec, "threshold")
    elif name == "distinct":
        m = _mapping(ctx, spec, "distinct", {"field", "count"})
        f = _field(ctx, "distinct.field", _req(ctx, m, "field", "distinct"))
        values["distinct_field"] = f.name
        values["distinct_getter"] = field_getter(f)
        values["distinct_count"] = _positive(ctx, m.get("count"), "distinct.count")
    elif name == "sequence":
        m = _mapping(ctx, spec, "sequence", {"first", "then"})
        values["first"] = _step(ctx, _req(ctx, m, "first", "sequence"), "sequence.first")
        values["then"] = _step(ctx, _req(ctx, m, "then", "sequence"), "sequence.then")
    elif name == "first_seen":
        m = _mapping(ctx, spec, "first_seen", {"field", "learning"})
        f = _field(ctx, "first_seen.field", _req(ctx, m, "field", "first_seen"))
        values["seen_field"] = f.name
        values["seen_getter"] = field_getter(f)
        values["learning"] = _duration(ctx, m.get("learning", "0s"), "first_seen.learning")
    elif name == "dormant":
        m = _mapping(ctx, spec, "dormant", {"after"})
        values["dormant_after"] = _duration(ctx, _req(ctx, m, "after", "dormant"), "dormant.after")
    elif name == "baseline":
        m = _mapping(ctx, spec, "baseline", {"bucket", "factor", "min_count", "learning"})
        values["baseline_bucket"] = _duration(ctx, m.get("bucket", "1h"), "baseline.bucket")
        factor = m.get("factor", 5)
        if not isinstance(factor, int | float) or isinstance(factor, bool) or factor <= 1:
            raise ctx.fail("baseline.factor", "must be a number greater than 1")
        values["baseline_factor"] = float(factor)
        values["baseline_min"] = _positive(ctx, m.get("min_count", 20), "baseline.min_count")
        values["learning"] = _duration(ctx, m.get("learning", "7d"), "baseline.learning")
    elif name == "travel":
        m = _mapping(ctx, spec, "travel", {"max_speed_kmh", "min_distance_km"})
        speed = m.get("max_speed_kmh", 900)
        dist = m.get("min_distance_km", 300)
        for label, v in (("max_speed_kmh", speed), ("min_distance_km", dist)):
            if not isinstance(v, int | float) or isinstance(v, bool) or v <= 0:
                raise ctx.fail(f"travel.{label}", "must be a positive number")
        values["travel_speed_kmh"] = float(speed)
        values["travel_min_km"] = float(dist)
    elif name == "silence":
        m = _mapping(ctx, spec, "silence", {"after"})
        values["silence_after"] = _duration(ctx, _req(ctx, m, "after", "silence"), "silence.after")
        if not values["group_by"]:
            raise ctx.fail("group_by", "required with silence (which host or source went quiet)")


def _step(ctx: _Ctx, spec: Any, where: str) -> Step:
    m = _mapping(ctx, spec, where, {"match", "threshold"})
    query = _req(ctx, m, "match", where)
    if not isinstance(query, str):
        raise ctx.fail(f"{where}.match", "must be a query string")
    tree = _query(ctx, f"{where}.match", query)
    return Step(query, compile_predicate(tree), _positive(ctx, m.get("threshold", 1), where))


def _schedule(ctx: _Ctx, spec: Any) -> Schedule:
    m = _mapping(ctx, spec, "schedule", {"hours", "days", "timezone", "fire"})
    hours = _req(ctx, m, "hours", "schedule")
    hm = re.fullmatch(r"(\d{1,2}):(\d\d)-(\d{1,2}):(\d\d)", str(hours))
    if hm is None:
        raise ctx.fail("schedule.hours", f"{hours!r} is not HH:MM-HH:MM (e.g. 08:00-18:00)")
    start = int(hm[1]) * 60 + int(hm[2])
    end = int(hm[3]) * 60 + int(hm[4])
    if not (0 <= start < end <= 24 * 60) or int(hm[2]) > 59 or int(hm[4]) > 59:
        raise ctx.fail("schedule.hours", f"{hours!r}: the start must be before the end")
    days = _days(ctx, m.get("days", "mon-fri"))
    tz_name = m.get("timezone", "UTC")
    try:
        tz = ZoneInfo(str(tz_name))
    except (ZoneInfoNotFoundError, ValueError):
        raise ctx.fail("schedule.timezone", f"unknown time zone {tz_name!r}") from None
    fire = m.get("fire", "outside")
    if fire not in ("outside", "inside"):
        raise ctx.fail("schedule.fire", "must be outside or inside")
    return Schedule(days, start, end, tz, fire)


def _days(ctx: _Ctx, spec: Any) -> frozenset[int]:
    items = spec if isinstance(spec, list) else str(spec).split(",")
    out: set[int] = set()
    for item in items:
        part = str(item).strip().lower()
        lo, _, hi = part.partition("-")
        if lo not in _DAYS or (hi and hi not in _DAYS):
            raise ctx.fail("schedule.days", f"{part!r}: use mon..sun or ranges like mon-fri")
        a, b = _DAYS.index(lo), _DAYS.index(hi or lo)
        out.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(b + 1)])
    return frozenset(out)


def _allow(ctx: _Ctx, spec: Any) -> tuple[Allow, ...]:
    if not isinstance(spec, list):
        raise ctx.fail("allow", "must be a list of {field, values} or {query} entries")
    out: list[Allow] = []
    for i, item in enumerate(spec):
        where = f"allow[{i}]"
        m = _mapping(ctx, item, where, {"field", "values", "query"})
        if "query" in m:
            if len(m) != 1 or not isinstance(m["query"], str):
                raise ctx.fail(where, "an entry is either {query: TEXT} or {field, values}")
            pred = compile_predicate(_query(ctx, f"{where}.query", m["query"]))
            out.append(Allow(f"query {m['query']}", pred))
            continue
        f = _field(ctx, f"{where}.field", _req(ctx, m, "field", where))
        vals = m.get("values")
        if not isinstance(vals, list) or not vals or not all(isinstance(v, str) for v in vals):
            raise ctx.fail(f"{where}.values", "must be a non-empty list of strings")
        allowed = frozenset(vals)
        get = field_getter(f)
        out.append(Allow(f"{f.name} in {sorted(allowed)}", _in_set(get, allowed)))
    return tuple(out)


def _in_set(get: Getter, allowed: frozenset[str]) -> Predicate:
    return lambda event: get(event) in allowed


Pin = tuple[str, str]  # ("action", value) or ("category", value)
_PIN_FIELDS: Final = frozenset({"action", "category"})


def required_pins(tree: Node) -> frozenset[Pin] | None:
    """Exact actions or categories one of which every match has (for the engine's index).

    ``action:ssh.login outcome:failure`` → ``{("action", "ssh.login")}``; an OR of pinned
    branches pins the union; a query that pins neither → None (tried on every event).
    """
    if isinstance(tree, TextMatch) and tree.field.attr in _PIN_FIELDS and len(tree.chunks) == 1:
        return frozenset((tree.field.attr, v) for v in tree.chunks)
    if isinstance(tree, OneOf) and tree.field.attr in _PIN_FIELDS:
        return frozenset((tree.field.attr, v) for v in tree.values)
    if isinstance(tree, And):
        found = [p for p in (required_pins(c) for c in tree.children) if p is not None]
        if not found:
            return None
        by_action = [p for p in found if all(f == "action" for f, _ in p)]
        return min(by_action or found, key=len)
    if isinstance(tree, Or):
        union: set[Pin] = set()
        for child in tree.children:
            pins = required_pins(child)
            if pins is None:
                return None
            union |= pins
        return frozenset(union)
    return None


# --- small validators --------------------------------------------------------------------------


def _req(ctx: _Ctx, m: Mapping[str, Any], key: str, where: str) -> Any:
    if m.get(key) is None:
        raise ctx.fail(f"{where}.{key}", "is required")
    return m[key]


def _mapping(ctx: _Ctx, spec: Any, where: str, allowed: set[str]) -> Mapping[str, Any]:
    if not isinstance(spec, Mapping):
        raise ctx.fail(where, f"must be a mapping with {', '.join(sorted(allowed))}")
    extra = sorted(str(k) for k in spec if k not in allowed)
    if extra:
        raise ctx.fail(f"{where}.{extra[0]}", f"unknown; expected {', '.join(sorted(allowed))}")
    return spec


def _text(ctx: _Ctx, doc: Mapping[str, Any], key: str, *, required: bool = True) -> str:
    value = doc.get(key)
    if value is None:
        if required:
            raise ctx.fail(key, "is required")
        return ""
    if isinstance(value, bool | int | float):
        raise ctx.fail(key, f"must be text, YAML read {value!r}: put it in quotes")
    if not isinstance(value, str) or not value.strip():
        raise ctx.fail(key, "must be a non-empty string")
    return value.strip()


def _text_list(ctx: _Ctx, doc: Mapping[str, Any], key: str) -> list[str]:
    value = doc.get(key)
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ctx.fail(key, "must be a list of strings")
    return list(value)


def _field(ctx: _Ctx, where: str, name: Any) -> Field:
    if not isinstance(name, str):
        raise ctx.fail(where, "must be a field name")
    try:
        return resolve_field(name)
    except QueryError as exc:
        raise ctx.fail(where, exc.message) from None


def _query(ctx: _Ctx, where: str, text: str) -> Node:
    try:
        return parse(text)
    except QueryError as exc:
        raise ctx.fail(where, f"invalid query: {exc.render()}") from None


def _duration(ctx: _Ctx, value: Any, where: str) -> int:
    try:
        micros = parse_duration(str(value))
    except ValueError as exc:
        raise ctx.fail(where, str(exc)) from None
    if micros <= 0:
        raise ctx.fail(where, "must be longer than zero")
    return micros


def _positive(ctx: _Ctx, value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ctx.fail(where, f"must be a whole number of at least 1, not {value!r}")
    return value


# --- files -------------------------------------------------------------------------------------


def load_rules_text(text: str, *, source: str) -> list[Rule]:
    """Rules from YAML text: one document, several ``---`` documents, or a list."""
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise RuleError(f"{source}: not valid YAML: {exc}") from None
    items: list[object] = []
    for doc in docs:
        if isinstance(doc, list):
            items.extend(doc)
        elif isinstance(doc, Mapping) and "rules" in doc and "id" not in doc:
            rules = doc["rules"]
            if not isinstance(rules, list):
                raise RuleError(f"{source}: 'rules' must be a list of rules")
            items.extend(rules)
        else:
            items.append(doc)
    if not items:
        raise RuleError(f"{source}: no rules in this file")
    rules = [parse_rule(item, source=source) for item in items]
    _no_duplicates(rules)
    return rules


def load_rules_file(path: Path) -> list[Rule]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleError(f"{path}: cannot read rules: {exc}") from None
    return load_rules_text(text, source=str(path))


def _no_duplicates(rules: Iterable[Rule]) -> None:
    seen: dict[str, str] = {}
    for rule in rules:
        if rule.id in seen:
            raise RuleError(
                f"{rule.source}: rule {rule.id!r}: id: already defined in {seen[rule.id]}"
            )
        seen[rule.id] = rule.source


def pack_dir() -> Path:
    """The shipped rule pack."""
    return Path(__file__).with_name("pack")


def load_rule_set(dirs: Iterable[Path], *, include_pack: bool = True) -> list[Rule]:
    """The pack, then every ``*.yaml``/``*.yml`` of the given directories; ids must be unique.

    A later rule with the id of a pack rule is an error rather than an override: replacing a
    shipped rule silently is how detections disappear. Disable one with ``enabled: false`` in a
    copy under another id instead, or via ``[detect] disabled``.
    """
    files: list[Path] = []
    if include_pack:
        files.extend(sorted(pack_dir().glob("*.yaml")))
    for d in dirs:
        if d.is_dir():
            files.extend(sorted([*d.glob("*.yaml"), *d.glob("*.yml")]))
    rules: list[Rule] = []
    for f in files:
        rules.extend(load_rules_file(f))
    _no_duplicates(rules)
    return rules
