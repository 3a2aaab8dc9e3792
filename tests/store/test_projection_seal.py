"""The pure pieces of storage v2: projection, sealing, partition names."""

from __future__ import annotations

import os

import orjson
import pytest
from tests.factories import make_event

from keeptrail.errors import UserError
from keeptrail.event import canonical_bytes
from keeptrail.protect.projection import (
    DEFAULT_CLEAR,
    REQUIRED,
    ROW_COLUMNS,
    DocumentProjection,
    Projection,
    clear_fields_from_config,
    decode_clear,
    encode_clear,
)
from keeptrail.protect.seal import Sealer, SealError, aad_for, open_sealed, seal
from keeptrail.store import rows
from keeptrail.store.partitioning import (
    DayCache,
    check_name,
    day_bounds,
    day_number,
    partition_name,
)


def test_projection_row_layout_is_the_stores() -> None:
    """The projection's idea of a row is exactly rows.COLUMNS (it cannot import it)."""
    assert ROW_COLUMNS == rows.COLUMNS


@pytest.mark.parametrize(
    "clear", [DEFAULT_CLEAR, REQUIRED, frozenset(DEFAULT_CLEAR | {"target_resource"})]
)
def test_row_and_document_projections_agree(clear: frozenset[str]) -> None:
    """What ingest writes in clear columns is what verify expects from the opened event."""
    events = [
        make_event(),
        make_event(source_ip="2001:db8::7", actor_uid=0, ingested_at=None, reason=None),
        make_event(source_ip=None, actor_name=None, target_resource="/etc/shadow", time=0),
        make_event(time=-1_234_567, collector_offset=99, collector_file="/var/log/x"),
    ]
    row_side, doc_side = Projection(clear), DocumentProjection(clear)
    for event in events:
        row = rows.encode(event)
        assert row_side(row) == doc_side(orjson.loads(canonical_bytes(rows.decode((0, *row)))))


def test_clear_fields_configuration() -> None:
    """Dotted names are accepted, the always-clear fields are added, sealed-only ones refused."""
    assert clear_fields_from_config({}) == DEFAULT_CLEAR
    chosen = clear_fields_from_config({"protect": {"clear_fields": ["source.ip"]}})
    assert chosen == REQUIRED | {"source_ip"}
    assert decode_clear(encode_clear(chosen)) == chosen
    with pytest.raises(UserError, match="always sealed"):
        clear_fields_from_config({"protect": {"clear_fields": ["details"]}})
    with pytest.raises(UserError, match=r"unknown field 'actor\.nme'"):
        clear_fields_from_config({"protect": {"clear_fields": ["actor.nme"]}})
    with pytest.raises(UserError, match="must be a list"):
        clear_fields_from_config({"protect": {"clear_fields": "actor.name"}})


def test_seal_round_trip_and_bound_to_its_row() -> None:
    """A sealed value opens with its key and associated data only."""
    key, other = os.urandom(32), os.urandom(32)
    aad = aad_for(b"\x01" * 16, "p20240101_default")
    blob = seal(key, b"secret command", aad)
    assert b"secret" not in blob
    assert open_sealed(key, blob, aad) == b"secret command"
    assert Sealer().open(key, Sealer().seal(key, b"x", aad), aad) == b"x"
    with pytest.raises(SealError, match="does not authenticate"):
        open_sealed(other, blob, aad)
    with pytest.raises(SealError):
        open_sealed(key, blob, aad_for(b"\x02" * 16, "p20240101_default"))  # another row
    with pytest.raises(SealError):
        open_sealed(key, blob, aad_for(b"\x01" * 16, "p20240102_default"))  # another partition
    with pytest.raises(SealError, match="too short"):
        open_sealed(key, b"abc", aad)
    assert seal(key, b"same", aad) != seal(key, b"same", aad)  # fresh nonces


def test_partition_names_and_days() -> None:
    """Names follow p<YYYYMMDD>_<class>[-n]; days are UTC."""
    t = 1_708_552_484_000_000  # 2024-02-21T21:54:44Z
    assert day_number(t) == 20240221 == DayCache()(t)
    start, end = day_bounds(20240221)
    assert start <= t < end
    assert end - start == 86_400_000_000
    assert partition_name(20240221, "auth") == "p20240221_auth"
    assert partition_name(20240221, "auth", 3) == "p20240221_auth-3"
    assert check_name("p20240221_auth-3") == "p20240221_auth-3"
    for bad in ('p20240221_x"; DROP TABLE leaves; --', "events", "p2024_auth"):
        with pytest.raises(ValueError):
            check_name(bad)
    with pytest.raises(ValueError, match="invalid retention class"):
        partition_name(20240221, "Auth")
