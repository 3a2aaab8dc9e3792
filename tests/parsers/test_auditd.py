"""The auditd parser: record decoding, assembly by serial, actor mapping, hostile input."""

from __future__ import annotations

from auditd_helpers import REFERENCE_US, run
from hypothesis import given, settings
from hypothesis import strategies as st

from keeptrail.parsers import auditd
from keeptrail.parsers.auditd_records import execve_argv, parse_record, proctitle, sockaddr, text
from keeptrail.parsers.base import StreamContext

EXEC = [
    "type=SYSCALL msg=audit(1615114232.375:15558): arch=c000003e syscall=59 success=yes exit=0 "
    'items=2 ppid=10883 pid=10884 auid=1000 uid=0 gid=0 euid=0 tty=pts1 ses=1 comm="bash" '
    'exe="/usr/bin/bash" key="rootcmd"',
    'type=EXECVE msg=audit(1615114232.375:15558): argc=3 a0="bash" a1="-c" '
    "a2=6563686F2022612062220A",
    'type=CWD msg=audit(1615114232.375:15558): cwd="/root"',
    "type=PROCTITLE msg=audit(1615114232.375:15558): proctitle=62617368002D63",
    "type=EOE msg=audit(1615114232.375:15558): ",
]


def test_header_with_node_and_enriched_fields() -> None:
    """node=, type, time, serial and the interpreted fields after 0x1d are all read."""
    r = parse_record(
        "node=work type=LOGIN msg=audit(1640027821.949:151316): pid=1 uid=0 auid=0 ses=3 res=1"
        '\x1dUID="root" AUID="alice"'
    )
    assert r is not None
    assert (r.node, r.type, r.serial, r.time_us) == ("work", "LOGIN", 151316, 1640027821949000)
    assert r.enriched == {"UID": '"root"', "AUID": '"alice"'}
    assert r.fields["auid"] == "0"


def test_hex_and_quoted_values_decode() -> None:
    """Hex values of untrusted fields decode; quoted ones are literal; (null) is absent."""
    r = parse_record(
        'type=SYSCALL msg=audit(1.5:7): exe=2F746D702F6120622063 comm="ls" key=(null) pid=1234'
    )
    assert r is not None
    assert text(r.fields, "exe") == "/tmp/a b c"
    assert text(r.fields, "comm") == "ls"
    assert text(r.fields, "key") is None
    assert text(r.fields, "pid") == "1234"  # numbers that look like hex stay numbers
    assert r.time_us == 1_500_000


def test_proctitle_and_execve_chunks() -> None:
    """proctitle NULs become spaces; long EXECVE arguments split in aN[i] chunks are joined."""
    assert proctitle("76696D002F6574632F706173737764") == "vim /etc/passwd"
    assert proctitle('"top"') == "top"
    argv = execve_argv(
        [{"argc": "2", "a0": '"cat"', "a1_len": "6", "a1[0]": "616263", "a1[1]": "646566"}]
    )
    assert argv == ["cat", "abcdef"]


def test_sockaddr_families() -> None:
    """IPv4, IPv6 and unix socket addresses decode from SOCKADDR's hex."""
    assert sockaddr("02000050A9FEA9FE0000000000000000") == {
        "family": "inet",
        "ip": "169.254.169.254",
        "port": 80,
    }
    v6 = sockaddr("0A000016000000000000000000000000000000000000000100000000")
    assert (v6["family"], v6["ip"], v6["port"]) == ("inet6", "::1", 22)
    assert sockaddr("01002F7661722F72756E2F6E7363642F736F636B657400")["path"] == (
        "/var/run/nscd/socket"
    )


def test_user_msg_values_with_spaces() -> None:
    """shadow-utils' unquoted ``op=adding group to /etc/group`` keeps its spaces."""
    r = parse_record(
        "type=ADD_GROUP msg=audit(1610903553.686:584): pid=2940 uid=0 auid=1000 ses=14 "
        "msg='op=adding group to /etc/group id=1004 exe=\"/usr/sbin/groupadd\" res=success'"
    )
    assert r is not None
    assert text(r.fields, "op") == "adding group to /etc/group"
    assert r.fields["id"] == "1004"


def test_execve_event_is_assembled_with_login_user_as_actor() -> None:
    """SYSCALL+EXECVE+CWD+PROCTITLE+EOE become one process.exec by auid, effective root."""
    [e] = run(EXEC)
    assert (e.category, e.action, e.outcome) == ("process", "process.exec", "success")
    assert (e.actor_uid, e.actor_name, e.actor_effective_user) == (1000, None, "root")
    assert e.actor_session == "1"
    assert e.details["command"] == 'bash -c echo "a b"\n'
    assert (e.details["cwd"], e.details["key"], e.details["exe"]) == (
        "/root",
        "rootcmd",
        "/usr/bin/bash",
    )
    assert e.raw == "\n".join(EXEC)
    assert e.collector_offset == 0
    assert e.collector_parser == "auditd"


def test_enriched_names_fill_actor() -> None:
    """ENRICHED AUID=/EUID= names become actor.name and actor.effective_user."""
    lines = [EXEC[0] + '\x1dSYSCALL=execve AUID="alice" UID="root" EUID="root"', *EXEC[1:]]
    [e] = run(lines)
    assert (e.actor_name, e.actor_uid, e.actor_effective_user) == ("alice", 1000, "root")


def test_interleaved_records_are_grouped_and_eoe_completes() -> None:
    """Records of two events interleaved are grouped by serial; EOE emits each at once."""
    a = auditd.assembler(StreamContext(reference_us=REFERENCE_US))
    other = [line.replace(":15558)", ":15559)") for line in EXEC]
    order = [EXEC[0], other[0], EXEC[1], other[1], other[2], EXEC[2], EXEC[3], other[3]]
    emitted = []
    for i, line in enumerate(order):
        emitted += a.feed(line, i * 1000)
    assert emitted == []
    assert a.pending_since() == 0
    first = a.feed(EXEC[4], 9000)
    assert [e.details["serial"] for e in first] == [15558]
    assert a.pending_since() == 1000
    [second] = a.feed(other[4], 10000)
    assert second.details["command"] == first[0].details["command"]
    assert a.pending_since() is None


def test_single_record_types_emit_immediately() -> None:
    """User-space records (USER_LOGIN...) never get an EOE, so they are emitted at once."""
    a = auditd.assembler(StreamContext(reference_us=REFERENCE_US))
    line = (
        "type=USER_LOGIN msg=audit(1493162652.304:18662): pid=9729 uid=0 auid=4294967295 "
        'ses=4294967295 msg=\'op=login acct="bob" exe="/usr/sbin/sshd" hostname=? '
        "addr=10.1.2.3 terminal=sshd res=failed'"
    )
    [e] = a.feed(line, 0)
    assert (e.action, e.outcome, e.reason) == ("audit.login", "failure", "pam_failure")
    assert (e.actor_name, e.source_ip, e.target_system) == ("bob", "10.1.2.3", "sshd")
    assert a.pending_since() is None


def test_hex_acct_cannot_move_source() -> None:
    """A hex-encoded account name holding `` addr=1.2.3.4`` stays in the name."""
    acct = b"bob addr=6.6.6.6".hex().upper()
    line = (
        "type=USER_AUTH msg=audit(1.0:9): pid=1 uid=0 auid=4294967295 ses=4294967295 "
        f'msg=\'op=PAM:authentication acct={acct} exe="/usr/sbin/sshd" hostname=h '
        "addr=10.0.0.9 terminal=ssh res=failed'"
    )
    [e] = run([line])
    assert (e.actor_name, e.source_ip) == ("bob addr=6.6.6.6", "10.0.0.9")


def test_daemon_end_and_config_change() -> None:
    """The audit daemon stopping and rule changes are audit events with medium severity."""
    stop = "type=DAEMON_END msg=audit(1481078697.892:7799): op=terminate auid=0 pid=1 res=success"
    change = (
        "type=CONFIG_CHANGE msg=audit(1481077231.371:478): auid=1000 ses=3 op=remove_rule "
        'key="pam" list=4 res=1'
    )
    events = run([stop, change])
    assert [(e.action, e.severity) for e in events] == [
        ("audit.daemon_stop", "medium"),
        ("audit.config_change", "medium"),
    ]
    assert events[1].details["key"] == "pam"


def test_stale_events_are_emitted_without_eoe() -> None:
    """Without EOE, an event is emitted once max_idle later records have not touched it."""
    lines = [
        f"type=SYSCALL msg=audit(1.{i:03d}:{i}): syscall=2 success=yes auid=1 uid=1 euid=1"
        for i in range(1, 11)
    ]
    a = auditd.AuditdAssembler(StreamContext(reference_us=0), max_idle=3)
    out = []
    for i, line in enumerate(lines):
        out += a.feed(line, i * 100)
    assert [e.details["serial"] for e in out] == [1, 2, 3, 4, 5, 6]
    assert len(a.flush()) == 4


def test_open_events_are_bounded() -> None:
    """More open serials than max_open emits the oldest; nothing is dropped."""
    lines = [f'type=CWD msg=audit(5.000:{i}): cwd="/x"' for i in range(50)]
    events = run(lines, max_open=10)
    assert sorted(e.details["serial"] for e in events) == list(range(50))


def test_junk_line_is_unparsed_not_lost() -> None:
    """A line that is not an audit record is an unparsed event with its raw text."""
    [e] = run(["hello world"])
    assert (e.category, e.reason, e.raw) == ("unparsed", "not_an_audit_record", "hello world")


def test_sniff() -> None:
    """sniff recognises raw, node= and ENRICHED records, and nothing JSON or syslog."""
    assert auditd.sniff(EXEC[0])
    assert auditd.sniff("node=a " + EXEC[3])
    assert not auditd.sniff('{"kind":"Event","apiVersion":"audit.k8s.io/v1"}')
    assert not auditd.sniff("Feb 21 21:54:44 host sshd[1]: Accepted password for x")


LINE_PIECES = st.sampled_from(
    [*EXEC, "type=EOE msg=audit(1.2:3):", "type=USER_CMD msg=audit(1.2:3): msg='cmd=", "x", ""]
)


@settings(max_examples=200)
@given(st.lists(st.one_of(st.text(), LINE_PIECES, LINE_PIECES.map(lambda s: s[:40])), max_size=20))
def test_never_raises_never_loses(lines: list[str]) -> None:
    """Arbitrary lines never raise, and every non-blank line fed is in some emitted raw."""
    lines = [line.replace("\n", " ").replace("\r", " ") for line in lines]
    events = run(lines, max_open=3)
    raws = [r for e in events for r in e.raw.split("\n")]
    for line in lines:
        if line.strip():
            assert line in raws
    assert len(raws) == sum(1 for line in lines if line.strip())


def test_an_event_without_eoe_cannot_hold_records_without_end() -> None:
    """One serial fed record after record is emitted every ``max_lines`` records."""
    line = 'type=EXECVE msg=audit(1700000000.000:9): argc=2 a0="ls" a1="-l"'
    a = auditd.AuditdAssembler(StreamContext(reference_us=REFERENCE_US), max_lines=100)
    emitted = [e for i in range(250) for e in a.feed(line, i * 100)]
    assert [len(e.raw.split("\n")) for e in emitted] == [100, 100]
    assert {e.details["held_limit"] for e in emitted} == {"lines"}
    assert a.pending_since() == 200 * 100
    assert len(a.flush()[0].raw.split("\n")) == 50


def test_held_characters_are_bounded_per_event_and_per_stream() -> None:
    """An event past ``max_chars``, and the oldest events past ``max_held_chars``, go out."""
    big = 'type=EXECVE msg=audit(1700000000.000:{}): argc=1 a0="' + "x" * 1000 + '"'
    a = auditd.AuditdAssembler(
        StreamContext(reference_us=REFERENCE_US), max_chars=3000, max_held_chars=5000
    )
    out = [e for _ in range(3) for e in a.feed(big.format(1), 0)]
    assert [e.details["held_limit"] for e in out] == ["chars"]
    for serial in range(2, 9):
        out += a.feed(big.format(serial), serial)
    stream = [e for e in out if e.details.get("held_limit") == "stream"]
    assert len(stream) >= 2  # the oldest first, until what is held fits again
    assert [e.details["serial"] for e in stream] == list(range(2, 2 + len(stream)))
    held = a.flush()
    assert len(held) == 7 - len(stream)
    assert sum(len(e.raw) for e in held) <= 5000
