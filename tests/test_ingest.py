"""The ingest pipeline on real files: resume, rotation, gzip, partial lines, bad bytes."""

from __future__ import annotations

import base64
import contextlib
import gzip
import os
import shutil
import uuid
from pathlib import Path

import pytest

from keeptrail.event import uuid7_time
from keeptrail.ingest import Ingestor
from keeptrail.parsers import detect, formats
from keeptrail.query import parse
from keeptrail.store.sqlite import SQLiteStore

LINES = [
    "Feb 21 21:54:44 localhost sshd[3402]: Accepted publickey for vagrant from 10.0.2.2 port"
    " 63673 ssh2: RSA 39:33:99:e9:a0:dc:f2:33:a3:e5:72:3b:7c:3a:56:84",
    "Feb 23 00:13:35 localhost sshd[7483]: Accepted password for vagrant from 192.168.33.1 port"
    " 58803 ssh2",
    "Feb 21 21:56:12 localhost sshd[3430]: Invalid user test from 10.0.2.2",
    "Feb 20 08:35:22 slave22 sshd[5774]: Failed password for root from 216.160.83.57 port 29160"
    " ssh2",
    "Feb 21 23:35:33 localhost sudo: vagrant : TTY=pts/0 ; PWD=/home/vagrant ; USER=root ;"
    " COMMAND=/bin/ls",
]


def write(path: Path, lines: list[str], *, newline_at_end: bool = True) -> None:
    path.write_text("\n".join(lines) + ("\n" if newline_at_end else ""))
    os.utime(path, (1_709_000_000, 1_709_000_000))  # 2024-02-27: the year is inferred from it


def ingest(store: SQLiteStore, *paths: Path) -> Ingestor:
    ing = Ingestor(store, host="test-host", batch_size=2)
    for p in paths:
        ing.ingest_file(p)
    return ing


def test_ingest_counts_parsed_unparsed_and_stores_collector_fields(
    store: SQLiteStore, tmp_path: Path
) -> None:
    """Every line becomes an event with its file, offset and host; the summary counts them."""
    log = tmp_path / "auth.log"
    write(log, [*LINES, "complete garbage that no parser knows"])
    ing = ingest(store, log)
    assert ing.summary.lines == 6
    assert ing.summary.events == 6
    assert ing.summary.unparsed == 1
    assert store.count() == 6
    events = store.search(None, limit=10).events
    by_offset = {e.collector_offset: e for e in events}
    assert sorted(by_offset) == [sum(len(line) + 1 for line in [*LINES, "x"][:i]) for i in range(6)]
    first = by_offset[0]
    assert first.raw == LINES[0]
    assert first.collector_file == str(log.resolve())
    assert first.collector_host == "test-host"
    assert first.collector_parser == "sshd"
    assert first.time == 1_708_552_484_000_000  # Feb 21 2024 21:54:44 UTC


def test_second_run_ingests_only_what_is_new(store: SQLiteStore, tmp_path: Path) -> None:
    """Running ingest again on a grown file adds only the appended lines."""
    log = tmp_path / "auth.log"
    write(log, LINES[:3])
    ingest(store, log)
    assert store.count() == 3
    ingest(store, log)
    assert store.count() == 3
    with log.open("a") as f:
        f.write("\n".join(LINES[3:]) + "\n")
    ing = ingest(store, log)
    assert ing.summary.sources[0].resumed
    assert store.count() == 5


def test_rotated_and_compressed_copies_are_not_read_twice(
    store: SQLiteStore, tmp_path: Path
) -> None:
    """auth.log renamed to auth.log.1 and gzipped to auth.log.2.gz is recognised by content."""
    log = tmp_path / "auth.log"
    write(log, LINES * 60)  # longer than the fingerprint
    ingest(store, log)
    total = store.count()
    rotated = tmp_path / "auth.log.1"
    log.rename(rotated)
    write(log, ["Feb 28 10:00:00 localhost sshd[1]: Invalid user new from 10.9.9.9"])
    ingest(store, rotated, log)
    assert store.count() == total + 1
    gz = tmp_path / "auth.log.2.gz"
    with rotated.open("rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    rotated.unlink()
    ingest(store, gz)
    assert store.count() == total + 1


def test_gzip_backfill_is_read_transparently(store: SQLiteStore, tmp_path: Path) -> None:
    """A .gz file never seen before is decompressed and fully ingested."""
    gz = tmp_path / "auth.log.3.gz"
    with gzip.open(gz, "wt") as f:
        f.write("\n".join(LINES))  # no trailing newline: a finished file, last line taken
    ingest(store, gz)
    assert store.count() == len(LINES)


def test_copytruncate_restarts_from_the_beginning(store: SQLiteStore, tmp_path: Path) -> None:
    """A file truncated and rewritten in place is read again from byte zero."""
    log = tmp_path / "auth.log"
    write(log, LINES)
    ingest(store, log)
    write(log, ["Feb 28 11:00:00 localhost sshd[2]: Invalid user after from 10.1.1.1"])
    ingest(store, log)
    assert store.count() == len(LINES) + 1
    assert store.search(None, limit=1).events[0].actor_name == "after"


def test_unfinished_last_line_waits_for_its_newline(store: SQLiteStore, tmp_path: Path) -> None:
    """In a file still being written, a last line without newline waits for the writer."""
    log = tmp_path / "auth.log"
    log.write_text("\n".join(LINES[:2]) + "\n" + LINES[2][:20])  # mtime: now
    ing = ingest(store, log)
    assert store.count() == 2
    assert ing.summary.sources[0].pending
    with log.open("a") as f:
        f.write(LINES[2][20:] + "\n")
    ingest(store, log)
    assert store.count() == 3
    assert store.search(None, limit=1, since=None).events[0].raw in LINES


def test_idle_file_gives_up_its_unterminated_last_line(store: SQLiteStore, tmp_path: Path) -> None:
    """A file nobody has written to for a while is finished: its last line is taken as is."""
    log = tmp_path / "auth.log"
    write(log, LINES[:3], newline_at_end=False)  # mtime in the past
    ing = ingest(store, log)
    assert store.count() == 3
    assert not ing.summary.sources[0].pending
    ingest(store, log)
    assert store.count() == 3


def test_invalid_utf8_is_kept_exactly(store: SQLiteStore, tmp_path: Path) -> None:
    """Bytes that are not UTF-8 are escaped in raw and preserved exactly in base64."""
    log = tmp_path / "auth.log"
    data = b"Feb 21 21:56:12 localhost sshd[3430]: Invalid user \xff\xfeevil from 10.0.2.2\n"
    log.write_bytes(data)
    ingest(store, log)
    (event,) = store.search(None).events
    assert "\\xff\\xfe" in event.raw
    assert base64.b64decode(str(event.details["raw_base64"])) == data[:-1]


def test_blank_lines_are_counted_not_stored(store: SQLiteStore, tmp_path: Path) -> None:
    """Empty lines carry nothing to keep; they are counted in the summary."""
    log = tmp_path / "auth.log"
    write(log, [LINES[0], "", "   ", LINES[1]])
    ing = ingest(store, log)
    assert store.count() == 2
    assert ing.summary.sources[0].blank == 2


def test_crash_between_batches_resumes_without_loss_or_duplicates(
    store: SQLiteStore, tmp_path: Path
) -> None:
    """If a run dies after some batches, the next run stores exactly the remaining lines."""
    log = tmp_path / "auth.log"
    write(log, LINES * 4)

    class Boom(Exception):
        pass

    calls = 0
    real_append = store.append

    def failing_append(*args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if calls == 3:
            raise Boom
        return real_append(*args, **kwargs)

    store.append = failing_append  # type: ignore[method-assign]
    with contextlib.suppress(Boom):
        ingest(store, log)
    store.append = real_append  # type: ignore[method-assign]
    assert store.count() == 4  # two committed batches of two
    ingest(store, log)
    assert store.count() == len(LINES) * 4
    offsets = sorted(e.collector_offset or 0 for e in store.search(None, limit=100).events)
    assert len(offsets) == len(set(offsets))


def test_invalid_utf8_in_parsed_fields_is_rendered_visibly(
    store: SQLiteStore, tmp_path: Path
) -> None:
    """A user name with non-UTF-8 bytes is stored with visible escapes, not rejected."""
    log = tmp_path / "auth.log"
    log.write_bytes(
        b"Feb 21 21:56:12 localhost sshd[3430]: Invalid user \xff\xfeevil from 10.0.2.2\n"
    )
    os.utime(log, (1_709_000_000, 1_709_000_000))
    ingest(store, log)
    (event,) = store.search(None).events
    assert event.action == "ssh.invalid_user"
    assert event.actor_name == "\\xff\\xfeevil"
    assert event.source_ip == "10.0.2.2"


def test_a_failing_parser_costs_one_line_not_the_ingest(
    store: SQLiteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If a parser raises, that line becomes an unparsed event and ingest goes on."""

    def broken(_msg: object) -> None:
        raise RuntimeError("parser bug")

    monkeypatch.setitem(detect.FORMATS, "sudo", broken)
    log = tmp_path / "auth.log"
    write(log, LINES)
    ingest(store, log)
    assert store.count() == len(LINES)
    (bad,) = store.search(parse("reason:parser_error")).events
    assert bad.raw == LINES[4]
    assert bad.details["error"] == "RuntimeError"


def test_rereading_a_file_from_the_start_stores_nothing_twice(
    store: SQLiteStore, tmp_path: Path
) -> None:
    """Events read from files get ids from their file and offset, so a re-read is idempotent."""
    log = tmp_path / "auth.log"
    write(log, LINES * 3)
    ingest(store, log)
    first = store.count()
    store._db.execute("DELETE FROM file_positions")  # as if the position had been lost
    ing = ingest(store, log)
    assert store.count() == first
    assert ing.summary.sources[0].duplicates == len(LINES) * 3


def test_file_event_ids_are_uuid7_and_distinct(store: SQLiteStore, tmp_path: Path) -> None:
    """Deterministic ids are still valid, distinct UUIDv7s carrying the event's time."""
    log = tmp_path / "auth.log"
    write(log, LINES * 3)
    ingest(store, log)
    events = store.search(None, limit=100).events
    ids = {e.id for e in events}
    assert len(ids) == len(events)
    for e in events:
        parsed = uuid.UUID(e.id)
        assert parsed.version == 7
        assert uuid7_time(e.id) == e.time // 1000


def test_files_with_the_same_head_do_not_share_ids(store: SQLiteStore, tmp_path: Path) -> None:
    """Two files first seen empty get different ids for different lines at the same offset."""
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    a.write_text("")
    b.write_text("")
    ingest(store, a, b)
    write(a, [LINES[0]])
    write(b, [LINES[0].replace("vagrant", "vagrunt")])  # same time, same offset
    ingest(store, a, b)
    assert store.count() == 2


def test_a_parser_failing_at_end_of_input_does_not_stop_ingest(
    store: SQLiteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If an assembler raises when the input ends, what was read is kept and ingest completes."""

    def broken_flush(_self: object) -> list[object]:
        raise RuntimeError("flush bug")

    monkeypatch.setattr(formats._SyslogAssembler, "flush", broken_flush)
    gz = tmp_path / "auth.log.1.gz"
    with gzip.open(gz, "wt") as f:
        f.write("\n".join(LINES) + "\n")
    ing = ingest(store, gz)
    assert ing.summary.sources[0].lines == len(LINES)
    assert store.count() == len(LINES) + 1
    (bad,) = store.search(parse("reason:parser_error")).events
    assert bad.details["error"] == "RuntimeError"
