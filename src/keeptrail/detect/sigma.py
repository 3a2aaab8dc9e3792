"""Sigma rules to Keeptrail rules, with a verdict for every rule.

``keeptrail rules import-sigma PATH`` reads Sigma YAML (a file or a directory tree), converts
each rule's detection with pySigma (:mod:`~keeptrail.detect.sigma_backend`, field names from
:mod:`~keeptrail.detect.sigma_pipeline`) and writes Keeptrail rules (``docs/detect.md``):

- a plain Sigma rule becomes an instant rule whose ``match`` is the log source's filter ANDed
  with the converted condition;
- correlation rules become stateful clauses over the queries of the rules they reference:
  ``event_count`` → ``threshold``, ``value_count`` → ``distinct``, ``temporal_ordered`` of two
  rules → ``sequence``, and ``temporal`` of two rules → two sequences (A then B, B then A: "both
  within the window" in either order); ``group-by`` and ``timespan`` become ``group_by`` and
  ``window``;
- Sigma 1.x aggregations (``selection | count(field) by other > N`` with ``timeframe``), still
  common in older rule sets, are read the same way.

Nothing is skipped silently: each rule ends up in :attr:`ConversionReport.converted` or in
:attr:`ConversionReport.failed` with the reason (unsupported log source, unmapped field,
unsupported modifier, a condition our clauses cannot express). Every converted rule is also
loaded with :func:`keeptrail.detect.rules.parse_rule`, so what is written is known to load.

Rules referenced by a correlation are not written on their own unless they say
``generate: true``, as Sigma specifies.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml
from sigma.collection import SigmaCollection
from sigma.correlations import (
    SigmaCorrelationConditionOperator,
    SigmaCorrelationRule,
    SigmaCorrelationType,
)
from sigma.exceptions import SigmaError, SigmaRuleLocation
from sigma.rule import SigmaRule

from keeptrail.detect.rules import RuleError, parse_rule
from keeptrail.detect.sigma_backend import KeeptrailBackend, is_keeptrail_field
from keeptrail.detect.sigma_pipeline import (
    FREE_TEXT,
    SourceSpec,
    build_pipeline,
    describe_source,
    map_field,
    source_for,
)
from keeptrail.errors import UserError
from keeptrail.query.errors import QueryError
from keeptrail.query.parse import parse

_LEVELS: Final = {
    "informational": "low",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "critical": "critical",
}
_TAG: Final = re.compile(r"[a-z0-9_]+(\.[a-z0-9_\-]+)+")
_AGGREGATION: Final = re.compile(
    r"^(?P<base>.+?)\s*\|\s*count\(\s*(?P<field>[\w.\-]*)\s*\)"
    r"(?:\s+by\s+(?P<by>[\w.\-]+(?:\s*,\s*[\w.\-]+)*))?"
    r"\s*(?P<op>>=|<=|==|=|>|<)\s*(?P<count>\d+)\s*$"
)
_AGG_KEY: Final = "x-keeptrail-aggregation"
MAX_FILES: Final = 10_000


@dataclass(frozen=True, slots=True)
class Converted:
    """One Keeptrail rule made from Sigma: the document to write and where it came from."""

    rule_id: str
    title: str
    origin: str  # "file: sigma id"
    document: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Failure:
    """One Sigma rule that could not be converted, and why."""

    origin: str
    title: str
    reason: str


@dataclass(slots=True)
class ConversionReport:
    """Everything an import produced: rules to write and rules refused, with reasons."""

    converted: list[Converted] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    skipped_referenced: list[str] = field(default_factory=list)  # base rules of correlations
    filters: list[str] = field(default_factory=list)  # Sigma filters, applied to their rules

    @property
    def ok(self) -> bool:
        return not self.failed


class _Refused(Exception):
    """Internal: a rule cannot be converted; the message is the reason."""


# --- reading ----------------------------------------------------------------------------------


def sigma_files(path: Path) -> list[Path]:
    """The Sigma files of a path: the file itself, or every ``*.yml``/``*.yaml`` below it."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise UserError(f"{path}: no such file or directory")
    files = sorted(p for p in path.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file())
    if not files:
        raise UserError(f"{path}: no .yml or .yaml files below this directory")
    if len(files) > MAX_FILES:
        raise UserError(f"{path}: more than {MAX_FILES} rule files; import a smaller directory")
    return files


def load_collection(files: Iterable[Path], report: ConversionReport) -> SigmaCollection:
    """All rules of all files in one collection (so correlations can reference other files).

    A file that is not YAML is reported as a failure of its own and the others still load.
    """
    collections: list[SigmaCollection] = []
    for path in files:
        try:
            docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            report.failed.append(Failure(str(path), "", f"cannot read YAML: {_one_line(exc)}"))
            continue
        if not all(isinstance(d, dict) for d in docs):
            report.failed.append(
                Failure(str(path), "", "not a Sigma rule file (a YAML document is not a mapping)")
            )
            continue
        dicts = [_lift_aggregation(d) for d in docs]
        try:
            collections.append(
                SigmaCollection.from_dicts(
                    dicts,
                    collect_errors=True,
                    source=SigmaRuleLocation(path),
                    collect_filters=True,  # applied once, across files, by the merge below
                    resolve_references=False,
                )
            )
        except (SigmaError, TypeError, ValueError, AttributeError) as exc:
            report.failed.append(
                Failure(str(path), "", f"not a valid Sigma file: {_one_line(exc)}")
            )
    return SigmaCollection.merge(collections, resolve_references=False)


def _lift_aggregation(doc: dict[str, Any]) -> dict[str, Any]:
    """Move a Sigma 1.x ``| count() by ... > N`` out of the condition (pySigma refuses it).

    The aggregation goes to a private key read by :func:`_convert_plain`; ``timeframe`` goes
    with it. A condition that merely contains ``|`` without a recognised aggregation is left
    alone, so pySigma reports it.
    """
    detection = doc.get("detection")
    if not isinstance(detection, dict):
        return doc
    condition = detection.get("condition")
    if not isinstance(condition, str) or "|" not in condition:
        return doc
    m = _AGGREGATION.match(condition.strip())
    if m is None:
        return doc
    detection = dict(detection)
    timeframe = detection.pop("timeframe", None)
    detection["condition"] = m["base"]
    by = [b.strip() for b in m["by"].split(",")] if m["by"] else []
    aggregation = {
        "field": m["field"] or None,
        "by": by,
        "op": m["op"],
        "count": int(m["count"]),
        "timeframe": str(timeframe) if timeframe is not None else None,
    }
    return {**doc, "detection": detection, _AGG_KEY: aggregation}


# --- converting -------------------------------------------------------------------------------


def convert_path(path: Path) -> ConversionReport:
    """Convert every Sigma rule under ``path``; see the module docstring."""
    report = ConversionReport()
    collection = load_collection(sigma_files(path), report)
    by_id = _index(collection)
    _check_filters(collection, by_id, report)
    referenced = {
        id(target)
        for rule in collection.rules
        if isinstance(rule, SigmaCorrelationRule)
        for ref in rule.rules or []
        if (target := by_id.get(str(ref.reference))) is not None
    }
    backends: dict[str, KeeptrailBackend] = {}
    for rule in collection.rules:
        origin = _origin(rule)
        if (
            isinstance(rule, SigmaRule)
            and id(rule) in referenced
            and not _generates(rule, collection)
        ):
            report.skipped_referenced.append(origin)
            continue
        try:
            documents = _convert_one(rule, by_id, backends)
            for doc in documents:
                _validate(doc, origin)
                if any(c.rule_id == doc["id"] for c in report.converted):
                    raise _Refused(f"another imported rule has the id {doc['id']}")
        except _Refused as exc:
            report.failed.append(Failure(origin, str(rule.title or ""), str(exc)))
            continue
        report.converted.extend(Converted(d["id"], d["title"], origin, d) for d in documents)
    return report


Indexed = dict[str, SigmaRule | SigmaCorrelationRule]


def _index(collection: SigmaCollection) -> Indexed:
    """Rules by id and by name (how correlations and filters refer to them)."""
    by_id: Indexed = {}
    for rule in collection.rules:
        if rule.id is not None:
            by_id[str(rule.id)] = rule
        if rule.name:
            by_id[str(rule.name)] = rule
    return by_id


def _check_filters(collection: SigmaCollection, by_id: Indexed, report: ConversionReport) -> None:
    """Sigma filters were applied by pySigma when loading; report each, or what it misses."""
    for sigma_filter in collection.filters:
        names = sigma_filter.filter.rules
        missing = [
            str(r.reference)
            for r in (names if isinstance(names, list) else [])
            if str(r.reference) not in by_id
        ]
        if missing:
            reason = f"filter names rule {missing[0]}, which is not in the imported files"
            report.failed.append(
                Failure(_origin(sigma_filter), str(sigma_filter.title or ""), reason)
            )
        else:
            report.filters.append(_origin(sigma_filter))


def _convert_one(
    rule: SigmaRule | SigmaCorrelationRule, by_id: Indexed, backends: dict[str, KeeptrailBackend]
) -> list[dict[str, Any]]:
    """The Keeptrail rule documents of one Sigma rule; _Refused with the reason otherwise."""
    try:
        if rule.errors:
            raise _Refused(_one_line(rule.errors[0]))
        if isinstance(rule, SigmaCorrelationRule):
            return _convert_correlation(rule, by_id, backends)
        return [_convert_plain(rule, backends)]
    except SigmaError as exc:
        raise _Refused(_one_line(exc)) from None
    except NotImplementedError as exc:
        raise _Refused(f"not supported: {_one_line(exc)}") from None


def _generates(rule: SigmaRule, collection: SigmaCollection) -> bool:
    """Whether a correlation referencing this rule asks for its own alerts too."""
    for other in collection.rules:
        if isinstance(other, SigmaCorrelationRule) and other.generate:
            refs = {str(r.reference) for r in other.rules or []}
            if str(rule.id) in refs or (rule.name and rule.name in refs):
                return True
    return False


def _origin(rule: SigmaRule | SigmaCorrelationRule | Any) -> str:
    source = getattr(rule, "source", None)
    where = str(source.path) if source is not None else "?"
    ident = str(rule.id) if getattr(rule, "id", None) else (rule.title or "untitled")
    return f"{where}: {ident}"


def _backend(spec: SourceSpec, backends: dict[str, KeeptrailBackend]) -> KeeptrailBackend:
    if spec.name not in backends:
        pipeline: Any = build_pipeline(spec)  # pySigma's annotation says dict; it takes this
        backends[spec.name] = KeeptrailBackend(processing_pipeline=pipeline)
    return backends[spec.name]


def rule_query(rule: SigmaRule, backends: dict[str, KeeptrailBackend]) -> tuple[str, SourceSpec]:
    """The Keeptrail query of a Sigma rule's detection (log-source filter included)."""
    spec = source_for(rule.logsource)
    if spec is None:
        raise _Refused(f"unsupported logsource {describe_source(rule.logsource)}")
    backend = _backend(spec, backends)
    rule._output = True  # convert_rule returns nothing for rules only correlations use
    queries = [str(q) for q in backend.convert_rule(rule)]
    if not queries:
        raise _Refused("the condition produced no query")
    body = queries[0] if len(queries) == 1 else " OR ".join(f"({q})" for q in queries)
    query = f"{spec.filter} AND ({body})" if spec.filter else body
    try:
        parse(query)
    except QueryError as exc:
        raise _Refused(f"converted query does not parse: {exc.message}") from None
    return query, spec


def _convert_plain(rule: SigmaRule, backends: dict[str, KeeptrailBackend]) -> dict[str, Any]:
    query, spec = rule_query(rule, backends)
    doc = _header(rule, rule_id=_rule_id(rule))
    doc["match"] = query
    aggregation = rule.custom_attributes.get(_AGG_KEY) if rule.custom_attributes else None
    if aggregation:
        _apply_aggregation(doc, aggregation, spec)
    return doc


def _apply_aggregation(doc: dict[str, Any], agg: Mapping[str, Any], spec: SourceSpec) -> None:
    """A Sigma 1.x ``count(...) by ... > N`` as threshold/distinct with group_by and window."""
    if not agg.get("timeframe"):
        raise _Refused("aggregation without timeframe: the window would be unbounded")
    minimum = _at_least(str(agg["op"]), int(agg["count"]))
    doc["group_by"] = [_map_group(name, spec) for name in agg["by"]]
    doc["window"] = str(agg["timeframe"])
    if agg.get("field"):
        doc["distinct"] = {"field": _map_group(str(agg["field"]), spec), "count": minimum}
    else:
        doc["threshold"] = minimum


def _at_least(op: str, count: int) -> int:
    """Our clauses fire at "at least N"; ``> N`` is at least N+1, ``>= N`` at least N."""
    if op == ">":
        return count + 1
    if op == ">=":
        return max(count, 1)
    raise _Refused(f"count condition '{op} {count}': only > and >= can raise an alert")


def _map_group(name: str, spec: SourceSpec | None) -> str:
    mapped = map_field(name, spec)
    if mapped is None and is_keeptrail_field(name):
        mapped = name
    if mapped is None or mapped == FREE_TEXT:
        raise _Refused(f"unmapped field {name!r} in group-by/count")
    return mapped


def _convert_correlation(
    rule: SigmaCorrelationRule,
    by_id: Indexed,
    backends: dict[str, KeeptrailBackend],
) -> list[dict[str, Any]]:
    refs: list[SigmaRule] = []
    for ref in rule.rules or []:
        target = by_id.get(str(ref.reference))
        if target is None:
            raise _Refused(f"references rule {ref.reference}, which is not in the imported files")
        if not isinstance(target, SigmaRule):
            raise _Refused("correlations of correlations are not supported")
        refs.append(target)
    if not refs:
        raise _Refused("correlation without rules")
    if rule.aliases.aliases:
        raise _Refused("correlation field aliases are not supported")
    queries: list[tuple[str, SourceSpec]] = [rule_query(r, backends) for r in refs]
    spec = queries[0][1]
    group_by = [_map_group(name, spec) for name in rule.group_by or []]
    window = rule.timespan.spec if rule.timespan else None
    if not window:
        raise _Refused("correlation without timespan")
    cond = rule.condition
    kind = rule.type
    base = _header(rule, rule_id=_rule_id(rule))
    base["group_by"] = group_by
    base["window"] = window
    if kind in (SigmaCorrelationType.EVENT_COUNT, SigmaCorrelationType.VALUE_COUNT):
        op = _op_text(getattr(cond, "op", None))
        minimum = _at_least(op, int(getattr(cond, "count", 0)))
        base["match"] = _any_of([q for q, _ in queries])
        if kind is SigmaCorrelationType.EVENT_COUNT:
            base["threshold"] = minimum
        else:
            fieldref = getattr(cond, "fieldref", None)
            if not isinstance(fieldref, str):
                raise _Refused("value_count needs one field in condition.field")
            base["distinct"] = {"field": _map_group(fieldref, spec), "count": minimum}
        return [base]
    if kind in (SigmaCorrelationType.TEMPORAL, SigmaCorrelationType.TEMPORAL_ORDERED):
        if len(queries) != 2:
            raise _Refused(
                f"temporal correlation of {len(queries)} rules: only two (A then B) are supported"
            )
        op = _op_text(getattr(cond, "op", None))
        if _at_least(op, int(getattr(cond, "count", 2))) < 2:
            raise _Refused("temporal condition below 2 rules is an event_count, not a sequence")
        (a, _), (b, _) = queries
        first = dict(
            base, sequence={"first": {"match": a}, "then": {"match": b}}, match=_any_of([a, b])
        )
        if kind is SigmaCorrelationType.TEMPORAL_ORDERED:
            return [first]
        second = dict(
            base,
            id=f"{base['id']}.reverse",
            sequence={"first": {"match": b}, "then": {"match": a}},
            match=_any_of([a, b]),
        )
        return [first, second]
    raise _Refused(f"correlation type {kind.value} is not supported")


def _op_text(op: object) -> str:
    mapping = {
        SigmaCorrelationConditionOperator.GT: ">",
        SigmaCorrelationConditionOperator.GTE: ">=",
        SigmaCorrelationConditionOperator.LT: "<",
        SigmaCorrelationConditionOperator.LTE: "<=",
        SigmaCorrelationConditionOperator.EQ: "==",
    }
    if isinstance(op, SigmaCorrelationConditionOperator):
        return mapping.get(op, str(op))
    raise _Refused("extended correlation conditions are not supported")


def _any_of(queries: list[str]) -> str:
    unique = list(dict.fromkeys(queries))
    return unique[0] if len(unique) == 1 else " OR ".join(f"({q})" for q in unique)


def _rule_id(rule: SigmaRule | SigmaCorrelationRule) -> str:
    if rule.id is not None:
        return f"sigma-{str(rule.id).lower()}"
    slug = re.sub(r"[^a-z0-9]+", "-", str(rule.title or "untitled").lower()).strip("-")
    if not slug:
        slug = uuid.uuid5(uuid.NAMESPACE_URL, str(rule.title)).hex
    return f"sigma-{slug}"[:96].rstrip("-.")


def _header(rule: SigmaRule | SigmaCorrelationRule, *, rule_id: str) -> dict[str, Any]:
    """Id, title, description, severity, tags, references of the converted rule."""
    level = rule.level.name.lower() if rule.level is not None else "medium"
    description = (rule.description or "").strip()
    provenance = f"Converted from Sigma rule {rule.id or rule.title}"
    if rule.source is not None:
        provenance += f" ({Path(rule.source.path).name})"
    fp = [str(f) for f in rule.falsepositives or []]
    parts = [p for p in (description, provenance + ".") if p]
    if fp:
        parts.append("False positives: " + "; ".join(fp) + ".")
    tags = [t for t in (str(tag).lower() for tag in rule.tags or []) if _TAG.fullmatch(t)]
    doc: dict[str, Any] = {
        "id": rule_id,
        "title": str(rule.title or rule_id).strip(),
        "description": "\n".join(parts),
        "severity": _LEVELS.get(level, "medium"),
        "tags": tags,
    }
    refs = [str(r) for r in rule.references or []]
    if refs:
        doc["references"] = refs
    return doc


def _validate(doc: dict[str, Any], origin: str) -> None:
    try:
        parse_rule(doc, source=origin)
    except RuleError as exc:
        raise _Refused(f"converted rule does not load: {exc}") from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


# --- writing ----------------------------------------------------------------------------------


def dump_rules(docs: Iterable[Mapping[str, Any]]) -> str:
    """Rules as YAML documents separated by ``---`` (key order kept, long queries unwrapped)."""
    return "---\n".join(
        yaml.safe_dump(dict(d), sort_keys=False, allow_unicode=True, width=10_000) for d in docs
    )


def write_rules(report: ConversionReport, out: Path) -> list[Path]:
    """One ``<rule id>.yaml`` per converted rule in ``out`` (created); returns the paths."""
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for item in report.converted:
        path = out / f"{item.rule_id}.yaml"
        path.write_text(dump_rules([item.document]), encoding="utf-8")
        written.append(path)
    return written
