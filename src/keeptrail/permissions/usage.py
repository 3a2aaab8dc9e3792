"""What the audit history says each principal did: the "used" half of least privilege.

An entitlement snapshot says what an account *could* do; the event store says what it *did*.
This module asks the store, through its ordinary search API (so the same index walks and
time bounds as ``keeptrail search``), a few questions per principal and system:

- when it last acted and last authenticated successfully (``last_activity``);
- which commands it ran through sudo (``sudo.command`` events' ``details.command``);
- which SQL verbs it used on which tables (``db.query``/``db.ddl`` events: the command tag,
  and the table from pgaudit's object or, failing that, the statement text);
- which Kubernetes verbs it used on which resources (``k8s.*`` events);
- from which sources it logged in (for shared-account findings).

Every question is a query on ``actor.name`` (an indexed clear column) plus the system's event
filter, within ``[now - window, now)``, read newest first and capped at ``scan_limit`` events:
a principal with more history than that is reported as ``truncated`` rather than slowing the
findings down without bound. Which events belong to a system is a query too: by default
``linux:HOST`` is ``target.host:HOST`` (minus database, Kubernetes and web events),
``postgres:*`` is ``target.system:postgres``, ``mysql:*`` is ``target.system:mysql``,
``k8s:*`` is ``target.system:kubernetes`` and ``import:NAME`` is ``target.system:NAME``;
``[permissions.findings.events]`` in the configuration overrides it per system.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Final

from keeptrail.event import Event
from keeptrail.query import parse, resolve_field
from keeptrail.query.tree import And, Node, Not, TextMatch
from keeptrail.store import Store

_NON_HOST_SYSTEMS: Final = ("postgres", "mysql", "kubernetes", "http")
_PAGE: Final = 1000
_MAX_EMPTY_PAGES: Final = 20
_TABLE_REF: Final = re.compile(
    r"\b(?:FROM|JOIN|INTO|UPDATE|TABLE)\s+((?:\"[^\"]{1,128}\"|[A-Za-z_][\w$]{0,127})"
    r"(?:\.(?:\"[^\"]{1,128}\"|[A-Za-z_][\w$]{0,127}))?)",
    re.IGNORECASE,
)
_NOT_TABLES: Final = frozenset({"select", "lateral", "only", "unnest", "generate_series"})
STATEMENT_ACTIONS: Final = ("db.query", "db.ddl")


def equals(field: str, value: str) -> Node:
    """``field`` equal to ``value`` exactly, as a query tree.

    Names from collected systems and logs go into queries this way, never as query text:
    nothing in them (quotes, ``*``, control characters) can become syntax or be refused.
    """
    return TextMatch(resolve_field(field), (value,))


def all_of(*nodes: Node) -> Node:
    return And(tuple(nodes)) if len(nodes) > 1 else nodes[0]


def event_scope(system: str, overrides: Mapping[str, str] | None = None) -> Node:
    """The query that selects the events of one system (a configured override wins)."""
    if overrides and system in overrides:
        return parse(overrides[system])
    family, _, rest = system.partition(":")
    if family == "linux":
        excluded = (Not(equals("target.system", s)) for s in _NON_HOST_SYSTEMS)
        return all_of(equals("target.host", rest), *excluded)
    if family in {"postgres", "postgresql"}:
        return equals("target.system", "postgres")
    if family in {"mysql", "mariadb"}:
        return equals("target.system", "mysql")
    if family in {"k8s", "kubernetes"}:
        return equals("target.system", "kubernetes")
    return equals("target.system", rest or family)


@dataclass(frozen=True, slots=True)
class Seen:
    """One event that proves something happened: when, and its id (the evidence)."""

    time: int
    event_id: str


@dataclass(slots=True)
class Tally:
    """How often something was used in the window, and the latest event showing it."""

    count: int
    last: Seen


@dataclass(frozen=True, slots=True)
class Activity:
    """When a principal last acted and last authenticated successfully (``None``: never)."""

    last_action: Seen | None
    last_auth: Seen | None


@dataclass(slots=True)
class Tallies:
    """Uses of something, keyed by what was used; ``truncated`` when the scan hit its cap."""

    items: dict[str, Tally] = field(default_factory=dict)
    truncated: bool = False

    def add(self, key: str, event: Event) -> None:
        tally = self.items.get(key)
        if tally is None:  # newest first: the first event seen is the latest
            self.items[key] = Tally(1, Seen(event.time, event.id))
        else:
            tally.count += 1


def statement_tables(statement: str) -> list[str]:
    """Tables a SQL statement names after FROM/JOIN/INTO/UPDATE/TABLE (best effort, no parser).

    Unquoted names are folded to lower case as PostgreSQL does; a name without a schema is
    returned as it is (the caller decides what ``search_path`` means).
    """
    out: list[str] = []
    for m in _TABLE_REF.finditer(statement[:20_000]):
        parts = [
            p[1:-1] if p.startswith('"') else p.lower() for p in re.findall(r'"[^"]+"|[^.]+', m[1])
        ]
        if parts[-1] in _NOT_TABLES:
            continue
        name = ".".join(parts)
        if name not in out:
            out.append(name)
    return out


def statement_verb(event: Event) -> str | None:
    """The statement's leading verb (``SELECT``), from the parser's command tag."""
    tag = event.details.get("command_tag")
    if isinstance(tag, str) and tag:
        return tag.split(" ", 1)[0].upper()
    statement = event.details.get("statement")
    if isinstance(statement, str):
        m = re.match(r"\s*([A-Za-z]+)", statement)
        return m[1].upper() if m else None
    return None


class UsageReader:
    """Answers usage questions from a store, within ``[since, until)``; caches per principal."""

    def __init__(
        self,
        store: Store,
        *,
        since: int,
        until: int,
        scan_limit: int = 20_000,
        system_scan_limit: int = 1_000_000,
        overrides: Mapping[str, str] | None = None,
    ) -> None:
        self.store = store
        self.since = since
        self.until = until
        self.scan_limit = scan_limit
        self.system_scan_limit = system_scan_limit
        self.overrides = dict(overrides or {})
        self._cache: dict[tuple[str, str, str], object] = {}
        self._complete: set[str] = set()  # systems read in full by prefetch()

    # --- the generic walk ----------------------------------------------------------------------

    def events(
        self, query: Node | str, *, since: int | None, until: int | None, limit: int
    ) -> Iterator[Event]:
        """Events matching ``query`` newest first, at most ``limit`` of them.

        A page that stopped early (its scan budget spent on events a residual filter refused)
        is followed by its cursor like any other, at most ``_MAX_EMPTY_PAGES`` times in a row.
        """
        tree = parse(query) if isinstance(query, str) else query
        cursor: str | None = None
        left = limit
        empty = 0
        while left > 0:
            page = self.store.search(
                tree, since=since, until=until, limit=min(_PAGE, left), cursor=cursor
            )
            yield from page.events
            left -= len(page.events)
            empty = 0 if page.events else empty + 1
            if page.next_cursor is None or empty > _MAX_EMPTY_PAGES:
                return
            cursor = page.next_cursor

    def first(
        self, query: Node, *, since: int | None = None, until: int | None = None
    ) -> Seen | None:
        """The newest event matching ``query`` in ``[since, until)`` (``until``: the window's)."""
        for event in self.events(query, since=since, until=until or self.until, limit=1):
            return Seen(event.time, event.id)
        return None

    def scoped(self, system: str, principal: str | None = None, extra: str = "") -> Node:
        """The events of a system (by one principal; and matching ``extra`` query text)."""
        parts = [event_scope(system, self.overrides)]
        if principal is not None:
            parts.insert(0, equals("actor.name", principal))
        if extra:
            parts.append(parse(extra))
        return all_of(*parts)

    # --- one pass per system ------------------------------------------------------------------

    def prefetch(self, system: str) -> int:
        """Answer every question for every principal of a system in one walk of the window.

        Asking per principal costs a few index walks each, which adds up over thousands of
        accounts; one newest-first walk over the system's events in the window answers them
        all at once (at most ``system_scan_limit`` events). When the walk ends before the
        limit, principals it never met are known to be idle in the window and cost no query,
        except one bounded look before the window to tell dormant from never used. When the
        limit is hit, the questions fall back to per-principal queries. Returns the number of
        events read.
        """
        seen: dict[str, _Actor] = {}
        read = 0
        newest: Seen | None = None
        for event in self.events(
            self.scoped(system), since=self.since, until=self.until, limit=self.system_scan_limit
        ):
            read += 1
            if newest is None:
                newest = Seen(event.time, event.id)
            actor = event.actor_name
            if actor is None:
                continue
            state = seen.get(actor)
            if state is None:
                state = seen[actor] = _Actor(Seen(event.time, event.id))
            if event.outcome != "success":
                continue
            if event.category == "authentication":
                if state.auth is None:
                    state.auth = Seen(event.time, event.id)
                state.add("sources", event)
            if event.action == "sudo.command":
                state.add("sudo", event)
            elif event.action in STATEMENT_ACTIONS:
                state.add("sql", event)
            elif event.action.startswith("k8s."):
                state.add("k8s", event)
        self._cache[("coverage", system, "")] = newest
        if read >= self.system_scan_limit:
            return read  # incomplete: per-principal queries answer the rest
        for actor, state in seen.items():
            self._cache[("activity", system, actor)] = Activity(state.last, state.auth)
            for kind, tallies in state.tallies.items():
                self._cache[(kind, system, actor)] = tallies
        self._complete.add(system)
        return read

    # --- the questions -------------------------------------------------------------------------

    def coverage(self, system: str) -> Seen | None:
        """The newest event of the system in the window: ``None`` means no audit coverage."""
        key = ("coverage", system, "")
        if key in self._cache:
            cached = self._cache[key]
            return cached if isinstance(cached, Seen) else None
        return self.first(self.scoped(system), since=self.since)

    def activity(self, system: str, principal: str) -> Activity:
        """Last action ever (before ``until``) and last successful authentication in the window."""
        key = ("activity", system, principal)
        cached = self._cache.get(key)
        if isinstance(cached, Activity):
            return cached
        if system in self._complete:  # idle in the window: only the time before it is left
            result = Activity(self.first(self.scoped(system, principal), until=self.since), None)
            self._cache[key] = result
            return result
        result = Activity(
            last_action=self.first(self.scoped(system, principal)),
            last_auth=self.first(
                self.scoped(system, principal, "category:authentication AND outcome:success"),
                since=self.since,
            ),
        )
        self._cache[key] = result
        return result

    def _tallies(self, kind: str, system: str, principal: str, query: str) -> Tallies:
        key = (kind, system, principal)
        cached = self._cache.get(key)
        if isinstance(cached, Tallies):
            return cached
        if system in self._complete:
            return Tallies()  # the full pass met no event of this principal
        out = Tallies()
        seen = 0
        for event in self.events(
            self.scoped(system, principal, query),
            since=self.since,
            until=self.until,
            limit=self.scan_limit,
        ):
            seen += 1
            for item in _keys(kind, event):
                out.add(item, event)
        out.truncated = seen >= self.scan_limit
        self._cache[key] = out
        return out

    def sudo_commands(self, system: str, principal: str) -> Tallies:
        """Commands run successfully through sudo, keyed by the command line as logged."""
        return self._tallies("sudo", system, principal, "action:sudo.command AND outcome:success")

    def sql_statements(self, system: str, principal: str) -> Tallies:
        """Statements that ran, keyed ``VERB table`` (``VERB`` alone when no table is named)."""
        return self._tallies(
            "sql", system, principal, "(action:db.query OR action:db.ddl) AND outcome:success"
        )

    def k8s_requests(self, system: str, principal: str) -> Tallies:
        """Kubernetes requests allowed, keyed ``verb resource namespace`` (``*``: cluster)."""
        return self._tallies("k8s", system, principal, "action:k8s.* AND outcome:success")

    def login_sources(self, system: str, principal: str) -> Tallies:
        """Where successful authentications came from: source IP, else source host."""
        return self._tallies(
            "sources", system, principal, "category:authentication AND outcome:success"
        )


def _keys(kind: str, event: Event) -> list[str]:
    """What one event counts as a use of, for each kind of tally."""
    d = event.details
    if kind == "sudo":
        command = d.get("command")
        return [command.strip()] if isinstance(command, str) and command.strip() else []
    if kind == "sql":
        verb = statement_verb(event)
        if verb is None:
            return []
        if event.target_resource and event.target_resource_type not in (None, "database"):
            return [f"{verb} {event.target_resource}"]
        statement = d.get("statement")
        tables = statement_tables(statement) if isinstance(statement, str) else []
        return [f"{verb} {t}" for t in tables] or [verb]
    if kind == "k8s":
        verb = _text(d.get("verb")) or event.action.removeprefix("k8s.")
        resource = _text(d.get("resource")) or event.target_resource_type or "*"
        sub = _text(d.get("subresource"))
        if sub:
            resource = f"{resource}/{sub}"
        namespace = _text(d.get("namespace")) or "*"
        return [f"{verb} {resource} {namespace}"]
    if kind == "sources":
        where = event.source_ip or event.source_host
        return [where] if where else []
    return []


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


_KINDS: Final = ("sudo", "sql", "k8s", "sources")


@dataclass(slots=True)
class _Actor:
    """What one pass learned about one principal."""

    last: Seen
    auth: Seen | None = None
    tallies: dict[str, Tallies] = field(default_factory=lambda: {k: Tallies() for k in _KINDS})

    def add(self, kind: str, event: Event) -> None:
        for item in _keys(kind, event):
            self.tallies[kind].add(item, event)
