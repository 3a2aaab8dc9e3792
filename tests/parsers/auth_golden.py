"""Helpers shared by the parser tests: a fixed frame context and an event's key fields."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from keeptrail.event import Event
from keeptrail.parsers.base import SyslogMessage
from keeptrail.parsers.syslog import FrameContext

DATA = Path(__file__).resolve().parent.parent / "data"

# 2023-11-14T22:13:20Z: every sample line is older, so BSD years are inferred the same way.
REFERENCE_US = 1_700_000_000_000_000

KEY_FIELDS = (
    "category",
    "action",
    "outcome",
    "reason",
    "severity",
    "actor_name",
    "actor_uid",
    "actor_type",
    "actor_session",
    "actor_effective_user",
    "source_ip",
    "source_host",
    "target_host",
    "target_system",
    "target_resource",
    "target_resource_type",
    "details",
)


def context() -> FrameContext:
    """A frame context with a fixed reference time."""
    return FrameContext(reference_us=REFERENCE_US)


def key_fields(event: Event) -> dict[str, Any]:
    """The fields a golden file pins down (absent values omitted)."""
    out: dict[str, Any] = {}
    for name in KEY_FIELDS:
        value = getattr(event, name)
        if value is not None and value != {}:
            out[name] = value
    return out


def load_golden(name: str) -> list[dict[str, Any]]:
    """The records of ``tests/data/golden/<name>.jsonl``."""
    path = DATA / "golden" / f"{name}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def message(program: str, text: str, host: str | None = "host1") -> SyslogMessage:
    """A framed message as ``split_syslog`` would produce it."""
    return SyslogMessage(REFERENCE_US, host, program, 1234, text)


def ossec_decoded(number: int) -> tuple[str, dict[str, str]]:
    """The line of OSSEC ``contrib/logtesting/<number>`` and the fields its decoder extracted."""
    folder = DATA / "ossec" / "contrib" / "logtesting" / str(number)
    line = (folder / "log").read_text().splitlines()[0]
    fields: dict[str, str] = {}
    in_decoding = False
    for raw in (folder / "res").read_text().splitlines():
        if raw.startswith("**Phase 2"):
            in_decoding = True
        elif raw.startswith("**Phase 3"):
            break
        elif in_decoding and ": '" in raw:
            key, _, value = raw.strip().partition(": ")
            fields[key] = value.strip("'")
    return line, fields
