"""Helpers for the auditd tests: feed lines through an assembler, read the corpus files."""

from __future__ import annotations

from pathlib import Path

from keeptrail.event import Event
from keeptrail.parsers import auditd
from keeptrail.parsers.base import StreamContext

DATA = Path(__file__).resolve().parent.parent / "data"
REFERENCE_US = 1_700_000_000_000_000


def run(lines: list[str], **kwargs: int) -> list[Event]:
    """All events an auditd assembler emits for these lines, flush included."""
    a = auditd.AuditdAssembler(StreamContext(reference_us=REFERENCE_US), **kwargs)
    events: list[Event] = []
    offset = 0
    for line in lines:
        events += a.feed(line, offset)
        offset += len(line.encode()) + 1
    return events + a.flush()


def read_lines(relative: str) -> list[str]:
    """The lines of a file under ``tests/data`` (split on ``\n`` only: ENRICHED uses ``\x1d``)."""
    data = (DATA / relative).read_bytes().decode("utf-8", "backslashreplace")
    return data.removesuffix("\n").split("\n")


def aucoalesce_cases(relative: str) -> dict[str, list[str]]:
    """go-libaudit's aucoalesce YAML (``tests: {name: |\\n  lines}``) without a YAML library."""
    cases: dict[str, list[str]] = {}
    name: str | None = None
    for raw in read_lines(relative):
        head = raw.rstrip()
        if raw.startswith("  ") and not raw.startswith("    ") and head.endswith((": |", ": >")):
            name = head.strip()[:-3].strip().strip("\"'")
            cases[name] = []
        elif name is not None and raw.startswith("    ") and raw.strip():
            cases[name].append(raw[4:])
    return cases
