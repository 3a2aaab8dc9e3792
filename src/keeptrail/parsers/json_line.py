"""A log line (or message) that should hold one JSON object.

Several formats (journald export, PostgreSQL jsonlog, nginx ``escape=json``, sudo's JSON
logs) read a whole line as a JSON object and treat anything else — invalid JSON, or valid JSON
that is an array, string or number — as "not this format". One function says that once.
"""

from __future__ import annotations

from typing import Any

import orjson


def json_object(text: str) -> dict[str, Any] | None:
    """The object ``text`` holds, or ``None`` when it is not exactly one JSON object."""
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return doc if isinstance(doc, dict) else None
