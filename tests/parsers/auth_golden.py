"""Helpers shared by the parser tests: a fixed frame context and an event's key fields."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from keeptrail.event import Event
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
