"""Tampering with a real SQLite store through raw SQL is detected and located by verify."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

from tests.ledger.tamper_kit import (
    build,
    check,
    edit_event,
    leaf_of,
    move_leaf,
    raw,
    rewrite_tree,
    table_of,
)

from keeptrail.ledger.checkpoint import format_checkpoint
from keeptrail.ledger.merkle import Frontier
from keeptrail.ledger.note import generate_signer, sign_note
from keeptrail.ledger.publish import read_checkpoint_log


def test_untouched_store_verifies(tmp_path: Path) -> None:
    """An intact store verifies with every stored checkpoint checked and nothing found."""
    data = tmp_path / "data"
    events = build(data, [3, 5, 1, 7])
    report = check(data)
    assert report.ok, report.findings
    assert report.size == len(events) + 1  # and the ledger.key_created event
    assert report.checkpoints_checked == 5


def test_changed_field_is_modified_at_its_leaf(tmp_path: Path) -> None:
    """Changing one field of one event is reported as 'modified' at that event's leaf."""
    data = tmp_path / "data"
    events = build(data, [4, 4, 4])
    victim = events[6]
    index = leaf_of(data, victim.id)
    db = raw(data)
    db.execute(
        f"UPDATE {table_of(db, index)} SET outcome = 'success' WHERE leaf_index = ?", (index,)
    )
    report = check(data)
    assert report.first is not None
    assert (report.first.kind, report.first.leaf_index, report.first.event_id) == (
        "modified",
        index,
        victim.id,
    )


def test_deleted_event_is_missing_at_its_leaf(tmp_path: Path) -> None:
    """Deleting one event is reported as 'missing' at its leaf index."""
    data = tmp_path / "data"
    events = build(data, [5, 5])
    index = leaf_of(data, events[3].id)
    db = raw(data)
    db.execute(f"DELETE FROM {table_of(db, index)} WHERE leaf_index = ?", (index,))
    first = check(data).first
    assert first is not None
    assert (first.kind, first.leaf_index) == ("missing", index)
    db.execute("DELETE FROM leaves WHERE leaf_index = ?", (index,))  # and its leaf too
    first = check(data).first
    assert first is not None
    assert (first.kind, first.leaf_index) == ("missing", index)


def test_deleted_event_with_renumbered_leaves_is_located(tmp_path: Path) -> None:
    """Deleting an event and renumbering later leaves down is located to the signed batch."""
    data = tmp_path / "data"
    events = build(data, [6, 6])
    index = leaf_of(data, events[4].id)
    db = raw(data)
    db.execute(f"DELETE FROM {table_of(db, index)} WHERE leaf_index = ?", (index,))
    db.execute("DELETE FROM leaves WHERE leaf_index = ?", (index,))
    for later in range(index + 1, len(events) + 1):
        move_leaf(db, later, later - 1)
    report = check(data)
    first = report.first
    assert first is not None
    assert first.kind == "modified"
    assert first.leaf_index is not None
    assert first.range_end is not None
    assert first.leaf_index <= index < first.range_end
    assert "missing" in {f.kind for f in report.findings}  # fewer leaves than signed


def test_forged_event_appended_after_the_last_checkpoint_is_inserted(tmp_path: Path) -> None:
    """A forged row with a correct leaf hash after the last signed checkpoint is 'inserted'."""
    data = tmp_path / "data"
    build(data, [3, 3])
    db = raw(data)
    size = db.execute("SELECT count(*) FROM leaves").fetchone()[0]
    table = table_of(db, 1)
    db.execute(
        f"INSERT INTO {table} SELECT ?, randomblob(16), time, ingested_at, category, action,"
        " outcome, reason, severity, actor_name, actor_uid, actor_type, actor_session,"
        " actor_auth_method, actor_effective_user, source_ip, source_port, source_host,"
        " target_host, target_system, target_resource, target_resource_type, collector_host,"
        " collector_source, collector_parser, collector_file, collector_offset, sealed"
        f" FROM {table}"
        " WHERE leaf_index = 1",
        (size,),
    )
    db.execute(
        "INSERT INTO leaves SELECT ?, id, ?, x'00' FROM " + table + " WHERE leaf_index = ?",
        (size, table.strip('"'), size),
    )
    (forged_id,) = db.execute(f"SELECT id FROM {table} WHERE leaf_index = ?", (size,)).fetchone()
    edit_event(db, size, lambda doc: doc.update(id=str(uuid.UUID(bytes=forged_id))))
    rewrite_tree(db)
    first = check(data).first
    assert first is not None
    assert (first.kind, first.leaf_index) == ("inserted", size)


def test_forged_event_inserted_in_the_middle_is_located(tmp_path: Path) -> None:
    """A forged row slipped between two events, later leaves renumbered, is located there."""
    data = tmp_path / "data"
    events = build(data, [5, 5])
    db = raw(data)
    for leaf in range(len(events), 3, -1):
        move_leaf(db, leaf, leaf + 1)
    table = table_of(db, 1)
    db.execute(
        f"INSERT INTO {table} (leaf_index, id, time, category, action, outcome, sealed)"
        " SELECT 4, randomblob(16), time, category, action, outcome, sealed FROM "
        + table
        + " WHERE leaf_index = 1"
    )
    db.execute(
        "INSERT INTO leaves SELECT 4, id, ?, x'00' FROM " + table + " WHERE leaf_index = 4",
        (table.strip('"'),),
    )
    rewrite_tree(db)
    first = check(data).first
    assert first is not None
    assert first.leaf_index is not None
    assert first.leaf_index <= 4 < (first.range_end or 5)


def test_forged_event_without_a_leaf_is_inserted(tmp_path: Path) -> None:
    """A row added with no leaf columns at all is 'inserted' and named by its id."""
    data = tmp_path / "data"
    build(data, [3])
    db = raw(data)
    db.execute(
        f"INSERT INTO {table_of(db, 1)} (leaf_index, id, time, category, action, outcome,"
        " sealed) VALUES (1000, x'0190000000007000800000000000abcd', 1, 'audit', 'x',"
        " 'success', 'forged')"
    )
    kinds = {(f.kind, f.event_id) for f in check(data).findings}
    assert ("inserted", "01900000-0000-7000-8000-00000000abcd") in kinds


def test_swapped_events_are_reordered(tmp_path: Path) -> None:
    """Swapping the leaf positions of two events is reported as 'reordered' at the first."""
    data = tmp_path / "data"
    events = build(data, [8])
    a, b = leaf_of(data, events[2].id), leaf_of(data, events[6].id)
    db = raw(data)
    table = table_of(db, a)  # one day, one class: both rows are in this partition
    db.execute(f"UPDATE {table} SET leaf_index = -1 WHERE leaf_index = ?", (a,))
    db.execute(f"UPDATE {table} SET leaf_index = ? WHERE leaf_index = ?", (a, b))
    db.execute(f"UPDATE {table} SET leaf_index = ? WHERE leaf_index = -1", (b,))
    first = check(data).first
    assert first is not None
    assert (first.kind, first.leaf_index) == ("reordered", a)


def test_swapped_contents_are_reordered(tmp_path: Path) -> None:
    """Swapping two rows' contents under their leaf hashes is 'reordered' at the first."""
    data = tmp_path / "data"
    build(data, [6])
    db = raw(data)
    t = table_of(db, 2)
    db.execute(
        f"UPDATE {t} SET sealed = CASE leaf_index WHEN 2 THEN"
        f" (SELECT sealed FROM {t} WHERE leaf_index = 3) ELSE"
        f" (SELECT sealed FROM {t} WHERE leaf_index = 2) END"
        " WHERE leaf_index IN (2, 3)"
    )
    kinds = {(f.kind, f.leaf_index) for f in check(data).findings}
    assert ("modified", 2) in kinds or ("reordered", 2) in kinds
    assert check(data).first.leaf_index == 2  # type: ignore[union-attr]


def test_truncation_with_its_checkpoints_is_caught_by_an_external_log(tmp_path: Path) -> None:
    """Deleting the newest events and their checkpoints is 'rolled_back' per a published log."""
    data, log = tmp_path / "data", tmp_path / "published.log"
    build(data, [4, 4, 4], log=log)
    db = raw(data)
    keep = 5  # the key event and the first batch: a checkpoint boundary
    for (name,) in db.execute("SELECT name FROM partitions").fetchall():
        db.execute(f'DELETE FROM "{name}" WHERE leaf_index >= ?', (keep,))
    db.execute("DELETE FROM leaves WHERE leaf_index >= ?", (keep,))
    db.execute("DELETE FROM checkpoints WHERE size > ?", (keep,))
    db.execute("DELETE FROM ledger_nodes")
    rewrite_tree(db)
    assert check(data).ok  # the store alone cannot tell
    external = [(str(log), note) for note in read_checkpoint_log(log.read_text())]
    first = check(data, external).first
    assert first is not None
    assert (first.kind, first.leaf_index) == ("rolled_back", keep)


def test_rollback_to_an_older_copy_is_caught_by_an_external_checkpoint(tmp_path: Path) -> None:
    """Replacing the store with an older copy is 'rolled_back' at the old copy's size."""
    data, log = tmp_path / "data", tmp_path / "published.log"
    build(data, [3], log=log)
    old = tmp_path / "old.db"
    shutil.copy(data / "events.db", old)
    old_size = check(data).size
    build(data, [5], log=log)
    latest = read_checkpoint_log(log.read_text())[-1]
    shutil.copy(old, data / "events.db")
    assert check(data).ok
    first = check(data, [("witness copy", latest)]).first
    assert first is not None
    assert (first.kind, first.leaf_index) == ("rolled_back", old_size)


def test_event_and_its_hashes_rewritten_is_located_by_the_checkpoints(tmp_path: Path) -> None:
    """An event changed with its leaf hash, nodes and frontier is located by signed checkpoints."""
    data = tmp_path / "data"
    events = build(data, [1] * 20 + [16])
    index = leaf_of(data, events[9].id)
    db = raw(data)
    edit_event(db, index, lambda doc: doc["source"].pop("ip"))
    rewrite_tree(db)
    report = check(data)
    first = report.first
    assert first is not None
    assert (first.kind, first.leaf_index, first.event_id, first.exact) == (
        "modified",
        index,
        events[9].id,
        True,
    )


def test_rewritten_event_inside_a_batch_is_located_to_its_batch(tmp_path: Path) -> None:
    """Inside one signed batch, a consistent rewrite is located to that batch's leaf range."""
    data = tmp_path / "data"
    events = build(data, [4, 16, 4])
    index = leaf_of(data, events[10].id)
    db = raw(data)
    edit_event(db, index, lambda doc: doc["actor"].update(name="nobody"))
    rewrite_tree(db)
    first = check(data).first
    assert first is not None
    assert (first.kind, first.leaf_index, first.range_end, first.exact) == (
        "modified",
        5,
        21,
        False,
    )
    assert first.leaf_index <= index < first.range_end


def test_forged_checkpoint_without_the_key_is_a_bad_signature(tmp_path: Path) -> None:
    """A checkpoint signed by another key, or an edited one, is reported as 'bad_signature'."""
    data = tmp_path / "data"
    build(data, [2, 2])
    db = raw(data)
    size, note = db.execute("SELECT size, note FROM checkpoints ORDER BY size DESC").fetchone()
    origin = note.split("\n")[0]
    forger = generate_signer(origin)  # same name, different key: the file key is not at hand
    frontier = Frontier()
    frontier.extend([b"\x00" * 32] * (size + 1))
    forged = sign_note(format_checkpoint(origin, size + 1, frontier.root()), forger)
    db.execute(
        "INSERT INTO checkpoints (size, root, note, created_at) VALUES (?, ?, ?, 0)",
        (size + 1, frontier.root(), forged),
    )
    edited = note.replace(note.split("\n")[2], frontier.root().hex()[:43] + "=", 1)
    db.execute("UPDATE checkpoints SET note = ? WHERE size = ?", (edited, size))
    bad = [f for f in check(data).findings if f.kind == "bad_signature"]
    assert {f.checkpoint_size for f in bad} == {size, size + 1}


def test_rows_in_an_unregistered_partition_table_are_inserted(tmp_path: Path) -> None:
    """A partition-shaped table the store never created still has its rows reported."""
    data = tmp_path / "data"
    build(data, [3])
    db = raw(data)
    table = table_of(db, 1)
    db.execute(f'CREATE TABLE "p20990101_default" AS SELECT * FROM {table}')
    db.execute('UPDATE "p20990101_default" SET id = randomblob(16)')
    report = check(data)
    assert {f.kind for f in report.findings} == {"inserted"}
    assert len(report.findings) == 3  # the copied day: the three events built
