"""The event model: canonical bytes, documents, UUIDv7."""

from __future__ import annotations

import time
import uuid

import orjson
from hypothesis import given
from hypothesis import strategies as st

from keeptrail.event import (
    ENCODING_VERSION,
    canonical_bytes,
    format_time,
    from_document,
    parse_time,
    to_document,
    uuid7,
    uuid7_time,
)
from tests.factories import make_event


def test_canonical_bytes_are_sorted_compact_and_versioned() -> None:
    """The encoding has sorted keys, no whitespace, a version, and omits absent fields."""
    e = make_event(details={"b": 1, "a": "x"}, id="01890a5d-ac96-774b-bcce-b302099a8057")
    data = canonical_bytes(e)
    doc = orjson.loads(data)
    assert doc["v"] == ENCODING_VERSION
    assert data == orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
    assert list(doc) == sorted(doc)
    assert list(doc["details"]) == ["a", "b"]
    assert "reason" in doc
    assert "actor" in doc
    assert "effective_user" not in doc["actor"]
    assert doc["time"] == "2023-11-14T22:13:20.000000Z"


def test_canonical_bytes_do_not_depend_on_dict_insertion_order() -> None:
    """Two events equal in content encode to identical bytes."""
    a = make_event(details={"x": "1", "y": "2"}, id="01890a5d-ac96-774b-bcce-b302099a8057")
    b = make_event(details={"y": "2", "x": "1"}, id="01890a5d-ac96-774b-bcce-b302099a8057")
    assert canonical_bytes(a) == canonical_bytes(b)


def test_canonical_bytes_contain_no_floats() -> None:
    """Times are strings with six fractional digits, never floating point numbers."""
    e = make_event(time=1_700_000_000_123_456)
    assert b'"time":"2023-11-14T22:13:20.123456Z"' in canonical_bytes(e)


@given(st.integers(min_value=0, max_value=253_402_300_799_999_999))
def test_time_format_round_trips(micros: int) -> None:
    """Any microsecond instant from 1970 to 9999 survives format_time → parse_time."""
    assert parse_time(format_time(micros)) == micros


@given(
    st.text(),
    st.one_of(st.none(), st.text(max_size=20)),
    st.dictionaries(
        st.text(max_size=10),
        st.one_of(st.text(), st.integers(min_value=-(2**63), max_value=2**63 - 1), st.booleans()),
    ),
)
def test_document_round_trips(raw: str, actor: str | None, details: dict[str, object]) -> None:
    """from_document(to_document(e)) rebuilds the same event, whatever text it carries."""
    e = make_event(raw=raw, actor_name=actor, details=details)
    back = from_document(orjson.loads(orjson.dumps(to_document(e))))
    assert back == e


def test_uuid7_has_version_variant_and_time_and_sorts() -> None:
    """Ids are RFC 9562 version 7, carry the current millisecond and sort by creation."""
    ids = [uuid7() for _ in range(5000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    parsed = uuid.UUID(ids[0])
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122
    assert abs(uuid7_time(ids[-1]) - time.time() * 1000) < 5000
