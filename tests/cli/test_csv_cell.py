"""CSV cells never start a formula, even behind blanks or control characters."""

from __future__ import annotations

import pytest

from keeptrail.cli.output import csv_cell


@pytest.mark.parametrize(
    "text",
    ["=cmd|' /C calc'!A0", "+1", "-2+3", "@SUM(A1)", "\x1b[2J=cmd", "  =1+1", "\t=1", "\r=1"],
)
def test_formula_starts_are_neutralised(text: str) -> None:
    assert csv_cell(text) == "'" + text


@pytest.mark.parametrize("text", ["alice", "203.0.113.5", "ls -la", "a=b", ""])
def test_plain_text_is_unchanged(text: str) -> None:
    assert csv_cell(text) == text


def test_none_is_empty() -> None:
    assert csv_cell(None) == ""
