"""The spool: events and read positions committed together, bounded, surviving kill -9."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest

from keeptrail.agent.spool import Spool, SpoolClosed
from keeptrail.event import Event, uuid7
from keeptrail.store.contract import FilePosition


def make_events(n: int, tag: str = "e") -> list[Event]:
    return [
        Event(time=1, category="unparsed", action="unparsed", raw=f"{tag}{i}", id=uuid7())
        for i in range(n)
    ]


def test_append_commits_events_and_position_together(tmp_path: Path) -> None:
    """One append stores the events and the position; a reopened spool sees both."""
    spool = Spool(tmp_path / "spool.db")
    pos = FilePosition("/var/log/a", "f" * 64, 1024, 4096, time.time_ns() // 1000)
    assert spool.append(make_events(3), [pos]) == 3
    spool.close()
    again = Spool(tmp_path / "spool.db")
    assert again.depth[0] == 3
    assert again.file_position("/var/log/a") == pos
    assert again.file_position_by_fingerprint("f" * 64) is not None
    again.close()


def test_duplicate_ids_are_spooled_once(tmp_path: Path) -> None:
    """Appending an event id twice keeps one copy (the spool is idempotent like the store)."""
    spool = Spool(tmp_path / "spool.db")
    events = make_events(2)
    assert spool.append(events) == 2
    assert spool.append(events) == 0
    assert spool.depth[0] == 2
    spool.close()


def test_peek_and_ack_are_fifo(tmp_path: Path) -> None:
    """Events leave in the order they came, and only when acknowledged."""
    spool = Spool(tmp_path / "spool.db")
    spool.append(make_events(10))
    first = spool.peek(4)
    assert [e.seq for e in first] == sorted(e.seq for e in first)
    assert spool.peek(4) == first  # not removed by peeking
    spool.ack(first)
    rest = spool.peek(100)
    assert len(rest) == 6
    assert rest[0].seq > first[-1].seq
    assert spool.depth[0] == 6
    spool.close()


def test_fingerprint_history_survives_path_reuse(tmp_path: Path) -> None:
    """After a path holds new content, the old content's offset is still found by fingerprint."""
    spool = Spool(tmp_path / "spool.db")
    spool.append([], [FilePosition("/l/app.log", "a" * 64, 1024, 900, 1)])
    spool.append([], [FilePosition("/l/app.log", "b" * 64, 1024, 10, 2)])
    old = spool.file_position_by_fingerprint("a" * 64)
    assert old is not None
    assert old.offset == 900
    spool.close()


def test_full_spool_blocks_until_acked(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A full spool makes append wait (loudly) instead of dropping, and resumes after an ack."""
    spool = Spool(tmp_path / "spool.db", max_events=5)
    spool.append(make_events(5))
    done = threading.Event()

    def writer() -> None:
        spool.append(make_events(3, "late"))
        done.set()

    with caplog.at_level(logging.ERROR, logger="keeptrail.agent.spool"):
        threading.Thread(target=writer, daemon=True).start()
        time.sleep(0.3)
        assert not done.is_set()
        assert spool.full_since is not None
        assert "SPOOL FULL" in caplog.text
    spool.ack(spool.peek(2))
    assert done.wait(3)
    assert spool.depth[0] == 6
    spool.close()


def test_release_wakes_a_waiting_source(tmp_path: Path) -> None:
    """Stopping the agent wakes a source blocked on a full spool, which writes nothing."""
    spool = Spool(tmp_path / "spool.db", max_events=1)
    spool.append(make_events(1))
    errors: list[Exception] = []

    def writer() -> None:
        try:
            spool.append(make_events(1))
        except SpoolClosed as exc:
            errors.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    time.sleep(0.1)
    spool.release()
    thread.join(3)
    assert len(errors) == 1
    assert spool.depth[0] == 1
    spool.close()
