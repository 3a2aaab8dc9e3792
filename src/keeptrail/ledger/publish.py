"""Publishing signed checkpoints outside the store: an append-only file and a witness.

A rollback (the whole store replaced by an older copy) can only be caught by someone who kept
a newer checkpoint, so every checkpoint the store signs is also handed to a :class:`Publisher`
after its batch commits:

* ``KEEPTRAIL_CHECKPOINT_LOG`` (or ``keeptrail ingest --publish-checkpoints``, or the store's
  ``checkpoint_log`` argument): a file to which each signed note is appended (or a directory
  receiving one file per checkpoint), followed by one empty line — put it on another disk, another
  host (NFS, a synced folder) or ship it with the system logs. :func:`read_checkpoint_log`
  reads it back, and ``keeptrail verify --checkpoint FILE`` checks every entry.
* ``KEEPTRAIL_WITNESS_URL``: a C2SP tlog-witness ``add-checkpoint`` endpoint, POSTed at most
  every :data:`WITNESS_INTERVAL` seconds (and when the store closes) with the request body of
  :func:`~keeptrail.ledger.checkpoint.format_add_checkpoint`.

Publishing never blocks or undoes ingest: failures are returned to the store, which records a
``ledger.publish_failed`` event and carries on.
"""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from keeptrail.ledger.checkpoint import CheckpointError, format_add_checkpoint
from keeptrail.ledger.note import SIG_PREFIX

WITNESS_INTERVAL: Final = 10.0
WITNESS_TIMEOUT: Final = 5.0

ConsistencyFn = Callable[[int, int], list[bytes]]


def append_checkpoint(path: Path, note: str) -> None:
    """Append one signed note and an empty line to ``path``, flushed to disk.

    When ``path`` is a directory, each checkpoint becomes its own file named by tree size
    (``000000012345.checkpoint``), never overwritten — the shape a synced or object-store
    folder handles best.
    """
    if path.is_dir():
        lines = note.split("\n", 2)
        size = int(lines[1]) if len(lines) > 1 and lines[1].isdigit() else 0
        target = path / f"{size:012d}.checkpoint"
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return  # the same size was published already; the first note stands
        try:
            os.write(fd, note.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        return
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (note + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def read_checkpoint_log(text: str) -> list[str]:
    """Split a checkpoint log (or a single signed note) into its signed notes, in order."""
    notes: list[str] = []
    body: list[str] = []
    sigs: list[str] = []
    for line in text.splitlines():
        if line.startswith(SIG_PREFIX) and body:
            sigs.append(line)
        elif not line:
            if sigs:  # the empty line after a note's signatures ends it
                notes.append("\n".join(body) + "\n\n" + "\n".join(sigs) + "\n")
                body, sigs = [], []
        elif sigs:
            raise CheckpointError(f"unexpected line after signatures: {line[:80]!r}")
        else:
            body.append(line)
    if sigs:
        notes.append("\n".join(body) + "\n\n" + "\n".join(sigs) + "\n")
    elif body:
        raise CheckpointError("checkpoint file ends with an unsigned note")
    return notes


@dataclass(slots=True)
class Witness:
    """A tlog-witness we submit checkpoints to, and the size it last accepted from us."""

    url: str
    interval: float = WITNESS_INTERVAL
    accepted_size: int = 0
    pending: tuple[str, int] | None = None
    last_post: float = field(default=-1e18)

    def submit(self, note: str, size: int, consistency: ConsistencyFn, *, force: bool) -> None:
        """POST ``note`` now if the interval has passed (or ``force``), else keep it pending."""
        self.pending = (note, size)
        if not force and time.monotonic() - self.last_post < self.interval:
            return
        self.last_post = time.monotonic()
        self.pending = None
        if size <= self.accepted_size:
            return
        status, body = self._post(note, size, consistency)
        if status == 409 and body.strip().isdigit():  # the witness knows another size: retry
            witness_size = int(body.strip())
            if witness_size <= size:
                self.accepted_size = witness_size
                status, body = self._post(note, size, consistency)
        if status != 200:
            raise OSError(f"witness {self.url} answered {status}: {body.strip()[:200]}")
        self.accepted_size = size

    def _post(self, note: str, size: int, consistency: ConsistencyFn) -> tuple[int, str]:
        old = self.accepted_size
        body = format_add_checkpoint(old, consistency(old, size) if old else [], note)
        if not self.url.startswith(("http://", "https://")):
            raise OSError(f"witness URL must be http(s): {self.url}")
        request = urllib.request.Request(  # noqa: S310  # scheme checked above
            self.url, data=body.encode(), method="POST", headers={"Content-Type": "text/plain"}
        )
        try:
            with urllib.request.urlopen(request, timeout=WITNESS_TIMEOUT) as response:  # noqa: S310
                return int(response.status), response.read(4096).decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(4096).decode("utf-8", "replace")


@dataclass(slots=True)
class Publisher:
    """Where a store's checkpoints go once committed: a log file and/or a witness."""

    log: Path | None = None
    witness: Witness | None = None

    @classmethod
    def from_env(cls) -> Publisher:
        """``KEEPTRAIL_CHECKPOINT_LOG`` and ``KEEPTRAIL_WITNESS_URL``; unset means off."""
        log = os.environ.get("KEEPTRAIL_CHECKPOINT_LOG")
        url = os.environ.get("KEEPTRAIL_WITNESS_URL")
        return cls(Path(log).expanduser() if log else None, Witness(url) if url else None)

    @property
    def enabled(self) -> bool:
        """Whether there is anywhere to publish."""
        return self.log is not None or self.witness is not None

    def publish(self, note: str, size: int, consistency: ConsistencyFn) -> list[tuple[str, str]]:
        """Publish one checkpoint; returns ``(target, error)`` for each target that failed."""
        failures: list[tuple[str, str]] = []
        if self.log is not None:
            try:
                append_checkpoint(self.log, note)
            except OSError as exc:
                failures.append((str(self.log), str(exc)))
        if self.witness is not None:
            failures.extend(self._to_witness(note, size, consistency, force=False))
        return failures

    def flush(self, consistency: ConsistencyFn) -> list[tuple[str, str]]:
        """Send a checkpoint still held back by the witness interval."""
        if self.witness is None or self.witness.pending is None:
            return []
        note, size = self.witness.pending
        return self._to_witness(note, size, consistency, force=True)

    def _to_witness(
        self, note: str, size: int, consistency: ConsistencyFn, *, force: bool
    ) -> list[tuple[str, str]]:
        assert self.witness is not None
        try:
            self.witness.submit(note, size, consistency, force=force)
        except (OSError, CheckpointError, LookupError) as exc:
            return [(self.witness.url, str(exc))]
        return []
