"""The journald source, with a stand-in ``journalctl`` on PATH replaying real export entries."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest

from keeptrail.agent.spool import Spool
from keeptrail.agent.status import SourceStats
from keeptrail.sources.journald import JournalSettings, JournalSource

TESTDATA = Path(__file__).parents[1] / "data/beats/filebeat/input/journald/pkg/journalctl/testdata"

FAKE = """#!{python}
# A stand-in for journalctl -o json --follow: replays real entries (from Filebeat's test data)
# one per line, honours --after-cursor and --lines, then follows forever like the real one.
import json, sys, time
args = sys.argv[1:]
open({argv_log!r}, "a").write(" ".join(args) + "\\n")
entries = json.load(open({entries!r}))
after = next((a.split("=", 1)[1] for a in args if a.startswith("--after-cursor=")), None)
if after is None and "--lines=0" in args:
    entries = []
if after is not None:
    cursors = [e["__CURSOR"] for e in entries]
    entries = entries[cursors.index(after) + 1:] if after in cursors else entries
for e in entries:
    sys.stdout.write(json.dumps(e, separators=(",", ":")) + "\\n")
sys.stdout.flush()
while True:
    time.sleep(1)
"""


def real_entries() -> list[dict[str, object]]:
    entries = [orjson.loads((TESTDATA / "sample-journal-event.json").read_bytes())]
    entries += orjson.loads((TESTDATA / "corner-cases.json").read_bytes())
    for i, e in enumerate(entries):  # a few corpus entries lack a cursor: give them one
        e.setdefault("__CURSOR", f"s=stand-in;i={i:x}")
    return entries


@pytest.fixture
def fake_journalctl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    entries = tmp_path / "entries.json"
    entries.write_bytes(orjson.dumps(real_entries()))
    argv_log = tmp_path / "argv.log"
    script = bindir / "journalctl"
    script.write_text(
        FAKE.format(python=sys.executable, argv_log=str(argv_log), entries=str(entries))
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    return argv_log


def run_source(spool: Spool, until: int, wait: float = 10) -> None:
    source = JournalSource(
        JournalSettings(name="journal", start_at="beginning", flush_seconds=0.02),
        spool,
        host="h",
        stats=SourceStats("journal", "journald"),
    )
    stop = threading.Event()
    thread = threading.Thread(target=source.run, args=(stop,))
    thread.start()
    deadline = time.monotonic() + wait
    while spool.depth[0] < until and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)
    stop.set()
    thread.join(10)


def test_entries_are_spooled_with_their_cursor(tmp_path: Path, fake_journalctl: Path) -> None:
    """Every entry becomes an event whose raw is the export line; the last cursor is kept."""
    entries = real_entries()
    spool = Spool(tmp_path / "spool.db")
    run_source(spool, len(entries))
    docs = [orjson.loads(e.doc) for e in spool.peek(1000)]
    assert len(docs) == len(entries)
    assert all(d["collector"]["source"] == "journald" for d in docs)
    assert [orjson.loads(d["raw"])["__CURSOR"] for d in docs] == [e["__CURSOR"] for e in entries]
    assert spool.get_meta("journald:journal:cursor") == entries[-1]["__CURSOR"]
    assert "--lines=all" in fake_journalctl.read_text()
    spool.close()


def test_restart_resumes_after_the_persisted_cursor(tmp_path: Path, fake_journalctl: Path) -> None:
    """A second run starts journalctl after the stored cursor: nothing is read twice."""
    entries = real_entries()
    spool = Spool(tmp_path / "spool.db")
    run_source(spool, len(entries))
    run_source(spool, len(entries) + 1, wait=1.0)  # nothing more may come
    assert spool.depth[0] == len(entries)
    last_call = fake_journalctl.read_text().splitlines()[-1]
    assert f"--after-cursor={entries[-1]['__CURSOR']}" in last_call
    spool.close()
