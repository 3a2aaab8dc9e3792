"""Golden files: real log lines and the key fields of the events they must become."""

from __future__ import annotations

from typing import Any

import pytest
from auth_golden import context, key_fields, load_golden

from keeptrail.parsers.detect import parse_line

MODULES = ("sudo", "su", "pam", "shadow", "logind")
RECORDS = [(name, record) for name in MODULES for record in load_golden(name)]


@pytest.mark.parametrize(
    ("module", "record"), RECORDS, ids=lambda v: v if isinstance(v, str) else ""
)
def test_golden_line(module: str, record: dict[str, Any]) -> None:
    """Each golden line is parsed by its module into exactly the recorded key fields."""
    event = parse_line(record["line"], context())
    assert event.collector_parser == module
    assert key_fields(event) == record["expect"]


def test_golden_files_cover_every_module() -> None:
    """Every module has real samples in its golden file."""
    counts = {name: len(load_golden(name)) for name in MODULES}
    assert all(count >= 3 for count in counts.values()), counts
