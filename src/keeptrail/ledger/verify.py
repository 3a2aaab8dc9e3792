"""``verify``: recompute the tree from the stored events and hold it against what was signed.

Two layers of evidence, reported together, first damaged leaf first:

1. **The rows** (exact, but only against a careless attacker). Each row's content is re-encoded
   and hashed and compared with the leaf hash stored beside it (``modified``; ``reordered`` when
   the content belongs to another leaf); leaf indices must run 0, 1, 2, … (a gap is
   ``missing``); rows without a leaf are ``inserted``; ``seq`` (the row id, assigned in write
   order) must advance in step with the leaf index, which names a renumbering for what it is
   (``inserted`` / ``missing`` / ``reordered`` at the first shifted leaf).
2. **The signed checkpoints** (unforgeable without the key file). The recomputed tree's root
   is compared with every stored checkpoint at its size (one per committed batch), after
   checking its signature (``bad_signature``), and with every external checkpoint given (a
   larger size than the store is ``rolled_back``, another root at its size ``forked``). An
   attacker who rewrote events *and* their leaf hashes, nodes and frontier is caught here and
   located to the leaves between the last checkpoint that still matches and the first that
   does not — one batch, or one leaf when batches are single events.

Since storage shape v2 (docs/storage.md) a row is its sealed canonical bytes plus clear
columns: the store opens the seal (a value that does not authenticate — altered, or moved from
another row or partition — is ``modified``), hashes the bytes, and holds the clear columns
against the opened event (an edited clear column is ``modified`` too). A missing key stops the
run with an error naming the partition. Leaves whose events a retention purge removed are not
damage: they are reported in :attr:`Report.purged` with the purge event, and their stored leaf
hashes still have to match the signed checkpoints. The store only accepts a purge whose purge
event is itself a leaf, so dropping a partition by hand and calling it purged is ``missing``.

Memory stays flat: rows stream in chunks into a :class:`~keeptrail.ledger.merkle.Frontier`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Final, Protocol

from keeptrail.ledger.checkpoint import CheckpointError, parse_checkpoint
from keeptrail.ledger.merkle import EMPTY_ROOT, Frontier
from keeptrail.ledger.note import NoteError, Verifier, open_note
from keeptrail.store.contract import LeafRow, StoredCheckpoint

MAX_FINDINGS: Final = 100
KINDS: Final = (
    "modified",
    "missing",
    "inserted",
    "reordered",
    "rolled_back",
    "forked",
    "bad_signature",
)


class LedgerSource(Protocol):
    """The store reads verification needs (a subset of the store contract)."""

    def ledger_leaves(self, *, chunk: int = ...) -> Iterable[list[LeafRow]]: ...
    def unindexed_events(self, limit: int = ...) -> list[tuple[int, str]]: ...
    def leaf_index_of_hash(self, leaf_hash: bytes) -> int | None: ...
    def checkpoints(self) -> list[StoredCheckpoint]: ...
    def ledger_frontier(self) -> Frontier: ...


@dataclass(slots=True)
class Finding:
    """One kind of damage at one place: leaves ``[leaf_index, range_end)`` when not exact."""

    kind: str
    message: str
    leaf_index: int | None = None
    event_id: str | None = None
    range_end: int | None = None
    checkpoint_size: int | None = None

    @property
    def exact(self) -> bool:
        """Whether the damage is pinned to one leaf."""
        return self.range_end is None or (
            self.leaf_index is not None and self.range_end - self.leaf_index <= 1
        )


@dataclass(slots=True)
class PurgedRange:
    """Leaves of one partition whose events a retention purge removed (not damage).

    ``first``/``last`` span the partition's purged leaves; ``runs`` lists up to
    :data:`MAX_RUNS` inclusive runs of consecutive purged leaf indexes (other partitions'
    leaves interleave), ``events`` counts them all.
    """

    partition: str
    purge_event: str | None
    first: int
    last: int
    events: int = 0
    runs: list[tuple[int, int]] = field(default_factory=list)


MAX_RUNS: Final = 20


@dataclass(slots=True)
class Report:
    """The outcome of one verification run."""

    size: int = 0
    root: bytes = EMPTY_ROOT
    checkpoints_checked: int = 0
    external_checked: int = 0
    elapsed: float = 0.0
    findings: list[Finding] = field(default_factory=list)
    purged: list[PurgedRange] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing was found."""
        return not self.findings

    @property
    def first(self) -> Finding | None:
        """The damage at the lowest leaf index (unlocated findings last)."""
        if not self.findings:
            return None
        return min(self.findings, key=lambda f: (f.leaf_index is None, f.leaf_index or 0))

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready summary (hashes as hex)."""
        first = self.first
        return {
            "ok": self.ok,
            "size": self.size,
            "root": self.root.hex(),
            "checkpoints_checked": self.checkpoints_checked,
            "external_checked": self.external_checked,
            "elapsed_seconds": round(self.elapsed, 3),
            "events_per_second": round(self.size / self.elapsed) if self.elapsed else None,
            "first": asdict(first) if first else None,
            "findings": [asdict(f) for f in self.findings],
            "purged": [asdict(p) for p in self.purged],
        }


@dataclass(slots=True, frozen=True)
class _Target:
    size: int
    root: bytes
    source: str  # "stored" or the external file's name


def verify_ledger(
    store: LedgerSource,
    verifier: Verifier,
    *,
    external: Iterable[tuple[str, str]] = (),
    progress: Callable[[int], None] | None = None,
) -> Report:
    """Verify every stored event against the tree and the signed checkpoints.

    ``external`` holds ``(name, signed note)`` pairs kept outside the store (published logs,
    witness copies); ``progress`` is called with the number of rows done after each chunk.
    """
    began = time.perf_counter()
    report = Report()
    findings = report.findings
    targets = _signed_targets(store.checkpoints(), verifier, report, findings)
    stored_sizes = [t.size for t in targets]
    for name, note in external:
        target = _open(note, verifier, name, findings)
        if target is not None:
            targets.append(target)
            report.external_checked += 1
    targets.sort(key=lambda t: t.size)
    for seq, event_id in store.unindexed_events():
        findings.append(
            Finding(
                "inserted",
                f"event {event_id} (row {seq}) has no leaf: it was never "
                "appended through the ledger",
                event_id=event_id,
            )
        )
    walker = _Walker(store, targets, findings)
    walker.want.update(stored_sizes)
    for chunk in store.ledger_leaves():
        walker.feed(chunk)
        if progress:
            progress(len(chunk))
    walker.finish(stored_sizes[-1] if stored_sizes else None)
    report.purged = list(walker.purged.values())
    report.size = walker.frontier.size
    report.root = walker.frontier.root()
    if store.ledger_frontier() != walker.frontier and not findings:
        findings.append(
            Finding(
                "modified",
                "the stored tree state (frontier) does not match the events; "
                "the next checkpoint would be wrong",
                leaf_index=None,
            )
        )
    del findings[MAX_FINDINGS:]
    report.elapsed = time.perf_counter() - began
    return report


def _signed_targets(
    checkpoints: list[StoredCheckpoint], verifier: Verifier, report: Report, out: list[Finding]
) -> list[_Target]:
    targets: list[_Target] = []
    previous = 0
    for cp in checkpoints:
        report.checkpoints_checked += 1
        target = _open(cp.note, verifier, "stored", out, start=previous)
        if target is None:
            continue
        if target.size != cp.size or target.root != cp.root:
            out.append(
                Finding(
                    "bad_signature",
                    f"stored checkpoint row {cp.size} does not match"
                    f" the note it holds (size {target.size})",
                    previous,
                    None,
                    cp.size,
                    cp.size,
                )
            )
            continue
        targets.append(target)
        previous = cp.size
    return targets


def _open(
    note: str, verifier: Verifier, source: str, out: list[Finding], start: int | None = None
) -> _Target | None:
    """A checkpoint's size and root if it is signed by ``verifier`` for its origin."""
    try:
        text = open_note(note, [verifier]).text
        cp = parse_checkpoint(text)
    except (NoteError, CheckpointError) as exc:
        size = _claimed_size(note)
        where = "stored checkpoint" if source == "stored" else f"checkpoint in {source}"
        out.append(
            Finding(
                "bad_signature",
                f"{where} (size {size}) is not signed by {verifier.name}: {exc}",
                start,
                None,
                size,
                size,
            )
        )
        return None
    if cp.origin != verifier.name:
        out.append(
            Finding(
                "bad_signature",
                f"checkpoint from {source} names origin {cp.origin!r}, not {verifier.name!r}",
                start,
                None,
                None,
                cp.size,
            )
        )
        return None
    return _Target(cp.size, cp.root, source)


def _claimed_size(note: str) -> int | None:
    lines = note.split("\n", 2)
    return int(lines[1]) if len(lines) > 1 and lines[1].isdigit() else None


class _Walker:
    """The streaming loop: row checks, frontier growth, roots compared at target sizes."""

    def __init__(self, store: LedgerSource, targets: list[_Target], out: list[Finding]) -> None:
        self.store = store
        self.frontier = Frontier()
        self.targets = targets
        self.next_target = 0
        self.out = out
        self.expected = 0  # the next leaf index
        self.delta: int | None = None  # seq - leaf_index, constant in an intact store
        self.suspect: LeafRow | None = None  # first row whose seq broke step, judged later
        self.last_delta: int | None = None
        self.seq_reported = False
        self.want = {0, *(t.size for t in targets)}
        self.matched = 0  # size of the last target whose root matched
        self.ids: dict[int, str] = {}  # ids of the first leaf after each target
        self.checkpoint_reported = False
        self.row_damage_at: int | None = None
        self.purged: dict[str, PurgedRange] = {}
        self.last_purged: str | None = None  # the partition of the previous leaf, if purged

    def feed(self, chunk: list[LeafRow]) -> None:
        """Check one chunk of rows and grow the tree with their recomputed leaf hashes."""
        want = self.want
        hashes: list[bytes] = []
        for row in chunk:
            index = row.leaf_index
            if row.purged_by is not None:
                self._purged(row)
            else:
                self.last_purged = None
            if index != self.expected or row.stored_hash != row.computed_hash or row.problem:
                self._row_damage(row)
            delta = row.seq - index
            if delta != self.delta or self.suspect is not None:
                self._seq_step(row, delta)
            if index in want:
                self.ids[index] = _uuid(row.event_id)
            self.expected = index + 1
            hashes.append(row.computed_hash)
        self._extend(hashes)

    def _extend(self, hashes: list[bytes]) -> None:
        frontier, targets = self.frontier, self.targets
        pos = 0
        while self.next_target < len(targets):
            target = targets[self.next_target]
            need = target.size - frontier.size
            if need > len(hashes) - pos:
                break
            frontier.extend(hashes[pos : pos + need])
            pos += need
            self._compare(target)
            self.next_target += 1
        frontier.extend(hashes[pos:])

    def _compare(self, target: _Target) -> None:
        if self.frontier.root() == target.root:
            if not self.checkpoint_reported:
                self.matched = target.size
            return
        if self.checkpoint_reported:
            return
        self.checkpoint_reported = True
        lo, hi = self.matched, target.size
        if self.row_damage_at is not None and self.row_damage_at < hi:
            return  # already located exactly by the rows
        kind = "forked" if target.source != "stored" else "modified"
        what = (
            "signed checkpoint" if target.source == "stored" else f"checkpoint in {target.source}"
        )
        event_id = self.ids.get(lo)
        self.out.append(
            Finding(
                kind,
                f"leaves [{lo}, {hi}) no longer hash to the {what} at size {hi}: "
                f"events there were changed together with their stored hashes; the first "
                f"event of that range is {event_id}",
                lo,
                event_id,
                hi,
                hi,
            )
        )

    def _purged(self, row: LeafRow) -> None:
        """Extend the purged range of the row's partition (a purge is not damage)."""
        index, name = row.leaf_index, row.partition
        span = self.purged.get(name)
        if span is None:
            span = self.purged[name] = PurgedRange(name, row.purged_by, index, index)
        span.last = index
        span.events += 1
        if self.last_purged == name and span.runs and span.runs[-1][1] == index - 1:
            span.runs[-1] = (span.runs[-1][0], index)
        elif len(span.runs) < MAX_RUNS:
            span.runs.append((index, index))
        self.last_purged = name

    def _row_damage(self, row: LeafRow) -> None:
        index = row.leaf_index
        if self.row_damage_at is None:
            self.row_damage_at = min(index, self.expected)
        if len(self.out) >= MAX_FINDINGS:
            return
        event_id = _uuid(row.event_id)
        if row.problem:
            self.out.append(
                Finding(
                    row.problem_kind,
                    f"event {event_id} at leaf {index}: {row.problem}",
                    index,
                    event_id,
                )
            )
            return
        if index > self.expected:
            self.out.append(
                Finding(
                    "missing",
                    f"leaves [{self.expected}, {index}) are missing; "
                    f"the next stored event is {event_id}",
                    self.expected,
                    None,
                    index,
                )
            )
        elif index < self.expected:
            self.out.append(
                Finding("inserted", f"event {event_id} repeats leaf index {index}", index, event_id)
            )
        if row.stored_hash != row.computed_hash:
            other = self.store.leaf_index_of_hash(row.computed_hash)
            if other is not None and other != index:
                self.out.append(
                    Finding(
                        "reordered",
                        f"leaf {index} holds the event signed as leaf {other} (id now {event_id})",
                        index,
                        event_id,
                    )
                )
            else:
                self.out.append(
                    Finding(
                        "modified",
                        f"event {event_id} at leaf {index} no longer hashes to its leaf hash",
                        index,
                        event_id,
                    )
                )

    def _seq_step(self, row: LeafRow, delta: int) -> None:
        """Name a break in ``seq - leaf_index`` once its pattern shows.

        The offset returning to its old value means rows were permuted (``reordered``); two
        rows in a row at a new, lower offset mean leaves were renumbered upwards around an
        ``inserted`` row; at a higher offset, downwards over ``missing`` ones.
        """
        base = self.delta
        if base is None:
            self.delta = delta
            return
        suspect = self.suspect
        if delta == base:
            if suspect is not None:
                self._seq_finding("reordered", suspect, f"was moved to leaf {suspect.leaf_index}")
            return
        if suspect is None:
            self.suspect, self.last_delta = row, delta
            return
        if delta == self.last_delta:
            if delta < base:
                self._seq_finding("inserted", suspect, f"was inserted at leaf {suspect.leaf_index}")
            else:
                self._seq_finding("missing", suspect, "follows deleted events")
            self.delta = delta
            return
        self.last_delta = delta

    def _seq_finding(self, kind: str, row: LeafRow, text: str) -> None:
        self.suspect = None
        if self.seq_reported:
            return
        self.seq_reported = True
        index, event_id = row.leaf_index, _uuid(row.event_id)
        if self.row_damage_at is None or index <= self.row_damage_at:
            self.row_damage_at = index
            self.out.append(
                Finding(
                    kind, f"event {event_id} {text}; later leaves were renumbered", index, event_id
                )
            )

    def finish(self, latest_stored: int | None) -> None:
        """Report targets beyond the end of the tree, and leaves beyond the last checkpoint."""
        if self.suspect is not None:
            self._seq_finding(
                "reordered", self.suspect, f"was moved to leaf {self.suspect.leaf_index}"
            )
        size = self.frontier.size
        for target in self.targets[self.next_target :]:
            if target.source == "stored":
                self.out.append(
                    Finding(
                        "missing",
                        f"the store has {size} leaves but signed a "
                        f"checkpoint at size {target.size}",
                        size,
                        None,
                        target.size,
                        target.size,
                    )
                )
            else:
                self.out.append(
                    Finding(
                        "rolled_back",
                        f"{target.source} holds a checkpoint at "
                        f"size {target.size}; the store has only {size} leaves",
                        size,
                        None,
                        target.size,
                        target.size,
                    )
                )
            break
        if latest_stored is not None and size > latest_stored and self.row_damage_at is None:
            self.out.append(
                Finding(
                    "inserted",
                    f"leaves [{latest_stored}, {size}) are not covered by any signed checkpoint",
                    latest_stored,
                    self.ids.get(latest_stored),
                    size,
                )
            )


def _uuid(data: bytes) -> str:
    h = data.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
