"""Following files: rotation by rename and by copytruncate while lines keep coming, bounds."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import orjson

from keeptrail.agent.spool import Spool
from keeptrail.agent.status import SourceStats
from keeptrail.sources.tail import TailSettings, TailSource


def line(i: int) -> str:
    return f"Mar  1 12:00:{i % 60:02d} web-1 app[42]: line {i:06d} " + "x" * (i % 37)


def tail_for(spool: Spool, paths: list[str], **kw: object) -> TailSource:
    settings = TailSettings(name="t", paths=paths, poll_seconds=0.01, rotate_wait=0.2, **kw)  # type: ignore[arg-type]
    return TailSource(settings, spool, host="h", stats=SourceStats("t", "file"))


def spooled_raws(spool: Spool) -> list[str]:
    return [orjson.loads(e.doc)["raw"] for e in spool.peek(10**9)]


def run_until(source: TailSource, done: Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not done():
        source.poll()
        time.sleep(0.01)
    for _ in range(30):  # a few more passes: nothing may arrive twice
        source.poll()


def follow_while(source: TailSource, writer: Callable[[], None]) -> None:
    stop = threading.Event()
    thread = threading.Thread(target=lambda: _poll_loop(source, stop))
    thread.start()
    try:
        writer()
    finally:
        stop.set()
        thread.join()


def _poll_loop(source: TailSource, stop: threading.Event) -> None:
    while not stop.is_set():
        source.poll()
        time.sleep(0.005)


def test_rotation_by_rename_with_lines_appended_throughout(tmp_path: Path) -> None:
    """Renamed files are finished through their open descriptor: every line once, none lost."""
    log = tmp_path / "app.log"
    spool = Spool(tmp_path / "spool.db")
    source = tail_for(spool, [str(log)])
    total = 3000

    def writer() -> None:
        out = log.open("a")
        rotate_at = {300, 310, 900, 1700, 2400, 2405}  # big and small (< 1 KiB) files
        for i in range(total):
            out.write(line(i) + "\n")
            out.flush()
            if i in rotate_at:
                if (tmp_path / "app.log.1").exists():
                    os.replace(tmp_path / "app.log.1", tmp_path / "app.log.2")
                os.replace(log, tmp_path / "app.log.1")
                for j in range(3):  # the program writes on to the old file, then reopens
                    i_late = total + i * 10 + j
                    out.write(line(i_late) + "\n")
                    out.flush()
                out.close()
                out = log.open("a")
                time.sleep(0.25)  # rotations are minutes apart in life; polls are 10 ms here
            if i % 50 == 0:
                time.sleep(0.002)
        out.close()

    follow_while(source, writer)
    expected = {line(i) for i in range(total)} | {
        line(total + i * 10 + j) for i in (300, 310, 900, 1700, 2400, 2405) for j in range(3)
    }
    run_until(source, lambda: spool.depth[0] >= len(expected))
    raws = spooled_raws(spool)
    assert Counter(raws).most_common(1)[0][1] == 1
    assert set(raws) == expected
    source.close()
    spool.close()


def test_copytruncate_with_lines_appended_throughout(tmp_path: Path) -> None:
    """A truncated file is read again from its start and its copy resumed: every line once."""
    log = tmp_path / "app.log"
    spool = Spool(tmp_path / "spool.db")
    source = tail_for(spool, [str(tmp_path / "app.log*")])
    total = 3000
    truncate_at = {200, 205, 1000, 2200}

    def writer() -> None:
        with log.open("a") as out:
            for i in range(total):
                out.write(line(i) + "\n")
                out.flush()
                if i in truncate_at:  # logrotate's copytruncate, without its race window
                    shutil.copyfile(log, tmp_path / f"app.log.{i}")
                    out.truncate(0)
                    out.seek(0)
                    time.sleep(0.1)  # a read in flight when the file shrank ends first
                if i % 50 == 0:
                    time.sleep(0.002)

    follow_while(source, writer)
    expected = {line(i) for i in range(total)}
    run_until(source, lambda: spool.depth[0] >= total)
    raws = spooled_raws(spool)
    assert Counter(raws).most_common(1)[0][1] == 1
    assert set(raws) == expected
    source.close()
    spool.close()


def test_resume_after_restart_reads_only_new_lines(tmp_path: Path) -> None:
    """A new source on the same spool (agent restart) continues where the last one stopped."""
    log = tmp_path / "app.log"
    log.write_text("".join(line(i) + "\n" for i in range(100)))
    spool = Spool(tmp_path / "spool.db")
    first = tail_for(spool, [str(log)])
    first.poll()
    first.close()
    with log.open("a") as out:
        out.write("".join(line(i) + "\n" for i in range(100, 150)))
    second = tail_for(spool, [str(log)])
    second.poll()
    assert sorted(spooled_raws(spool)) == sorted(line(i) for i in range(150))
    second.close()
    spool.close()


def test_start_at_end_skips_only_what_existed_at_first_run(tmp_path: Path) -> None:
    """start_at=end skips existing content once; files appearing later are read whole."""
    old = tmp_path / "old.log"
    old.write_text("".join(line(i) + "\n" for i in range(10)))
    spool = Spool(tmp_path / "spool.db")
    source = tail_for(spool, [str(tmp_path / "*.log")], start_at="end")
    source.poll(first_scan=True)
    assert spool.depth[0] == 0
    with old.open("a") as out:
        out.write(line(10) + "\n")
    (tmp_path / "new.log").write_text(line(11) + "\n" + line(12) + "\n")
    source.poll()
    assert sorted(spooled_raws(spool)) == [line(10), line(11), line(12)]
    source.close()
    spool.close()


def test_full_spool_stops_reading_without_loss(tmp_path: Path) -> None:
    """At its bound the spool holds the source back (the position waits too); nothing is lost."""
    log = tmp_path / "app.log"
    log.write_text("".join(line(i) + "\n" for i in range(500)))
    spool = Spool(tmp_path / "spool.db", max_events=20)
    source = tail_for(spool, [str(log)], batch_size=10)
    stop = threading.Event()
    thread = threading.Thread(target=source.run, args=(stop,))
    thread.start()
    time.sleep(0.5)
    assert spool.full_since is not None
    assert spool.depth[0] <= 30
    position = spool.file_position(str(log.resolve()))
    assert position is not None
    assert position.offset < log.stat().st_size  # the rest of the file waits on disk
    shipped: list[str] = []
    deadline = time.monotonic() + 15
    while len(shipped) < 500 and time.monotonic() < deadline:
        batch = spool.peek(7)
        shipped += [orjson.loads(e.doc)["raw"] for e in batch]
        spool.ack(batch)
        time.sleep(0.005)
    stop.set()
    spool.release()
    thread.join(5)
    assert sorted(shipped) == sorted(line(i) for i in range(500))
    spool.close()
