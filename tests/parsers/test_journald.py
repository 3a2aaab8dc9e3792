"""journald JSON export: MESSAGE to the syslog-family parsers, trusted fields kept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from keeptrail.event import Event
from keeptrail.parsers import journald
from keeptrail.parsers.base import StreamContext

DATA = (
    Path(__file__).resolve().parent.parent
    / "data/beats/filebeat/input/journald/pkg/journalctl/testdata"
)


def feed(line: str) -> Event:
    """The one event a journald assembler makes of this line."""
    [event] = journald.assembler(StreamContext(reference_us=5, host="ctx")).feed(line, 11)
    return event


def entry(message: Any, identifier: str = "sshd", **extra: Any) -> str:
    """A journal export line as ``journalctl -o json`` writes it."""
    doc = {
        "__CURSOR": "s=abc;i=1",
        "__REALTIME_TIMESTAMP": "1724080855230058",
        "_BOOT_ID": "567980bb85ae41da8518f409570b0cb9",
        "_HOSTNAME": "web1",
        "_PID": "4242",
        "_UID": "0",
        "_COMM": "sshd",
        "_SYSTEMD_UNIT": "ssh.service",
        "SYSLOG_IDENTIFIER": identifier,
        "MESSAGE": message,
        **extra,
    }
    return orjson.dumps(doc).decode()


def test_sshd_message_is_parsed_with_trusted_fields() -> None:
    """An sshd MESSAGE becomes ssh.login, with journald's time, host and trusted fields."""
    line = entry("Accepted publickey for alice from 192.0.2.9 port 50000 ssh2: ED25519 SHA256:x")
    e = feed(line)
    assert (e.action, e.outcome, e.actor_name, e.source_ip) == (
        "ssh.login",
        "success",
        "alice",
        "192.0.2.9",
    )
    assert (e.time, e.target_host) == (1724080855230058, "web1")
    assert (e.collector_parser, e.collector_offset, e.raw) == ("journald", 11, line)
    assert e.details["journal_parser"] == "sshd"
    assert e.details["journal_unit"] == "ssh.service"
    assert e.details["journal_cursor"] == "s=abc;i=1"
    assert (e.details["journal_pid"], e.details["journal_uid"]) == ("4242", "0")
    assert e.details["journal_boot_id"] == "567980bb85ae41da8518f409570b0cb9"


def test_byte_array_message_and_pam_relay() -> None:
    """A MESSAGE sent as an array of bytes is decoded; sudo's PAM lines go to the PAM parser."""
    text = "pam_unix(sudo:session): session opened for user root(uid=0) by bob(uid=1000)"
    e = feed(entry(list(text.encode()), identifier="sudo"))
    assert (e.action, e.details["journal_parser"]) == ("pam.session_open", "pam")


def test_sudo_command() -> None:
    """A sudo MESSAGE keeps its command in details next to the journal fields."""
    e = feed(entry("bob : TTY=pts/0 ; PWD=/ ; USER=root ; COMMAND=/bin/id", identifier="sudo"))
    assert (e.action, e.actor_name, e.actor_effective_user) == ("sudo.command", "bob", "root")
    assert e.details["command"] == "/bin/id"


def test_unknown_program_and_junk_are_unparsed() -> None:
    """Unknown programs and non-entries are unparsed events that keep the whole line."""
    e = feed(entry("Count: 1", identifier="cat"))
    assert (e.category, e.reason, e.details["program"]) == ("unparsed", "no_parser_matched", "cat")
    assert e.time == 1724080855230058
    e = feed("[1, 2]")
    assert (e.category, e.reason, e.raw) == ("unparsed", "not_a_journal_entry", "[1, 2]")


def _corpus_lines() -> list[str]:
    sample = json.loads((DATA / "sample-journal-event.json").read_text())
    corner = json.loads((DATA / "corner-cases.json").read_text())
    return [orjson.dumps(doc).decode() for doc in [sample, *corner]]


def test_beats_corpus() -> None:
    """Beats' samples (coredumps, binary fields, odd types) all become events with their line."""
    lines = _corpus_lines()
    events = [feed(line) for line in lines]
    assert [e.raw for e in events] == lines
    first = events[0]
    assert (first.time, first.target_host, first.details["program"]) == (
        1724080855230058,
        "millennium-falcon",
        "TestRestartsJournalctlOnError",
    )
    assert first.details["journal_unit"] == "session-2.scope"
    # None of Beats' samples is an access event: all are unparsed, but with the journal fields.
    assert all(e.category == "unparsed" and "journal_cursor" in e.details for e in events[:1])
    assert len(events) == 3  # sample-journal-event.json + corner-cases.json's two entries


def test_sniff() -> None:
    """sniff keys on __REALTIME_TIMESTAMP and rejects k8s audit and app events."""
    assert journald.sniff(entry("x"))
    assert all(journald.sniff(line) for line in _corpus_lines())
    assert not journald.sniff('{"kind":"Event","apiVersion":"audit.k8s.io/v1"}')
    assert not journald.sniff('{"schema":"keeptrail.event/v1","time":"x"}')


@settings(max_examples=200)
@given(
    st.one_of(
        st.text(), st.lists(st.integers(-5, 300)), st.none(), st.integers(-(2**63), 2**63 - 1)
    ),
    st.text(max_size=12),
    st.one_of(st.text(max_size=25), st.integers(-(2**63), 2**63 - 1)),
)
def test_never_raises(message: Any, identifier: str, stamp: Any) -> None:
    """Arbitrary MESSAGE, identifier and timestamp values never raise; the line is the raw."""
    line = entry(message, identifier=identifier, __REALTIME_TIMESTAMP=stamp)
    assert feed(line).raw == line
    junk = str(message).replace("\n", " ")
    if junk.strip():
        assert feed(junk).raw == junk
