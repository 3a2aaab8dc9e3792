"""The OpenSSH sshd parser, against real lines from beats, OSSEC and Wazuh, and hostile input."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keeptrail.event import CATEGORIES, OUTCOMES, Event, datetime_to_micros, to_document
from keeptrail.parsers import sshd
from keeptrail.parsers.base import SyslogMessage
from keeptrail.parsers.detect import parse_line
from keeptrail.parsers.syslog import FrameContext, split_syslog

DATA = Path(__file__).parent.parent / "data"
REFERENCE_US = datetime_to_micros(datetime(2024, 6, 1, tzinfo=UTC))
INI_FILES = (
    DATA / "wazuh/ruleset/testing/tests/sshd.ini",
    DATA / "ossec/contrib/ossec-testing/tests/sshd.ini",
)
_LOG = re.compile(r"log \d+ (?:pass|fail) = (.*)$")

# (action, outcome, reason) each rule id's lines may produce. 5710 ("invalid user") spans
# several actions; every one of them must also carry the invalid-user fact (checked below).
EXPECTED: dict[str, set[tuple[str, str, str | None]]] = {
    "5701": {("ssh.connection", "failure", "banner_exchange_failed")},
    "5702": {("ssh.dns_mismatch", "unknown", None)},
    "5706": {("ssh.connection", "failure", "no_identification")},
    "5710": {
        ("ssh.invalid_user", "failure", "invalid_user"),
        ("ssh.login", "failure", "invalid_user"),
        ("ssh.auth_step", "unknown", None),
        ("ssh.disconnect", "unknown", None),
    },
    "5712": {("ssh.invalid_user", "failure", "invalid_user")},
    "5716": {("ssh.login", "failure", "no_auth_method")},
    "5718": {("ssh.login", "failure", "denied")},
    "5719": {("ssh.login", "failure", "denied")},
    "5722": {("ssh.disconnect", "unknown", None)},
    "5739": {("ssh.config_error", "failure", None)},
    "5740": {("ssh.disconnect", "unknown", None)},
    "5747": {("ssh.connection", "failure", "protocol_error")},
    "5748": {("ssh.connection", "failure", "protocol_error")},
    "5749": {("ssh.connection", "failure", "protocol_error")},
    "5752": {("ssh.connection", "failure", "negotiation_failed")},
    "5753": {("ssh.connection", "failure", "negotiation_failed")},
    "5755": {("ssh.config_error", "failure", None)},
    "5756": {("ssh.subsystem", "failure", None)},
    "5757": {("ssh.dns_mismatch", "unknown", None)},
    "5758": {("ssh.login", "failure", "max_attempts")},
    "5760": {("ssh.login", "failure", "pam_failure"), ("ssh.login", "failure", "bad_password")},
    "5761": {("ssh.disconnect", "unknown", None)},
    "5762": {("ssh.disconnect", "unknown", None)},
    "5763": {("ssh.login", "failure", "bad_password")},
    "2503": {("ssh.connection", "failure", "denied")},
}

# Lines the sshd parser leaves alone on purpose, by their syslog message, with the reason.
UNPARSED_BY_DESIGN: dict[str, str] = {
    "debug1: channel 5: connection failed: Connection refused": "debug noise (forwarding)",
    "debug1: channel 3: connection failed: Connection timed out": "debug noise (forwarding)",
    "debug1: channel 1: connection failed: No route to host": "debug noise (forwarding)",
    "debug1: server_input_channel_open: failure direct-tcpip": "debug noise (forwarding)",
    "debug1: getpeername failed: Transport endpoint is not connected": "debug noise",
    "debug1: get_remote_port failed": "debug noise",
    "input_userauth_request: invalid user opcione [preauth]": (
        "duplicate of the 'Invalid user' line sshd writes first, without the address"
    ),
    "pam_systemd(sshd:session): Failed to create session: Access denied": (
        "a PAM module's line: detect.py hands it to the PAM parser"
    ),
}


def _ctx() -> FrameContext:
    return FrameContext(reference_us=REFERENCE_US)


def _ini_cases() -> list[tuple[str, str]]:
    """(rule id, line) for every `log N pass|fail = LINE` of both sshd.ini files."""
    cases: list[tuple[str, str]] = []
    for path in INI_FILES:
        pending: list[str] = []
        for raw in path.read_text().splitlines():
            m = _LOG.match(raw)
            if m:
                pending.append(m[1])
            elif raw.startswith("rule = "):
                rule = raw.removeprefix("rule = ").strip()
                cases.extend((rule, line) for line in pending)
                pending = []
    return cases


def _msg(text: str, program: str = "sshd") -> SyslogMessage:
    return SyslogMessage(REFERENCE_US, "host1", program, 42, text)


def _parse(text: str, program: str = "sshd") -> Event:
    event = sshd.parse(_msg(text, program))
    assert event is not None, text
    return event


def test_ini_files_have_the_expected_size() -> None:
    """Both sshd.ini files are read whole: 102 lines, every one with a rule id."""
    cases = _ini_cases()
    assert len(cases) == 102
    assert {rule for rule, _ in cases} >= set(EXPECTED)


def test_every_ini_line_is_parsed_as_its_rule_says_or_listed_as_unparsed() -> None:
    """Each Wazuh/OSSEC sshd line yields its rule's action/outcome/reason, or is listed."""
    seen_unparsed: set[str] = set()
    for rule, line in _ini_cases():
        event = parse_line(line, _ctx())
        assert event.raw == line
        framed = split_syslog(line, _ctx())
        assert framed is not None, f"no framing: {line}"
        if framed.message in UNPARSED_BY_DESIGN:
            assert sshd.parse(framed) is None, line
            assert event.collector_parser != "sshd"
            seen_unparsed.add(framed.message)
            continue
        assert event.collector_parser == "sshd", f"rule {rule} unparsed: {line}"
        assert (event.action, event.outcome, event.reason) in EXPECTED[rule], line
        assert event.target_system == "ssh"
        assert event.target_host == framed.host
        assert event.time == framed.time
        if rule == "5710":
            assert event.details.get("invalid_user") or event.reason == "invalid_user", line
    assert seen_unparsed == set(UNPARSED_BY_DESIGN)


def test_beats_sshd_lines_are_all_parsed() -> None:
    """Every sshd line of the beats auth sample becomes an sshd event with its source IP."""
    lines = (DATA / "beats/filebeat/module/system/auth/test/test.log").read_text().splitlines()
    sshd_lines = [line for line in lines if " sshd[" in line]
    assert len(sshd_lines) == 5
    events = [parse_line(line, _ctx()) for line in sshd_lines]
    assert [(e.action, e.outcome, e.actor_name, e.source_ip) for e in events] == [
        ("ssh.login", "success", "vagrant", "10.0.2.2"),
        ("ssh.login", "success", "vagrant", "192.168.33.1"),
        ("ssh.invalid_user", "failure", "test", "10.0.2.2"),
        ("ssh.login", "failure", "root", "216.160.83.57"),
        ("ssh.connection", "failure", None, "2.125.160.217"),
    ]


def _ossec_res(text: str) -> dict[str, str]:
    """The decoded fields of an ossec-logtest result (`srcip: '1.2.3.4'`)."""
    part = text.partition("**Phase 2")[2].partition("**Phase 3")[0]
    return dict(re.findall(r"^\s+(\w+): '(.*)'$", part, re.MULTILINE))


@pytest.mark.parametrize("case", ["39", "40", "41"])
def test_ossec_logtesting_fields_match(case: str) -> None:
    """Our srcip and user agree with ossec-logtest's decoded fields where it decoded any."""
    folder = DATA / "ossec/contrib/logtesting" / case
    line = (folder / "log").read_text().rstrip("\n")
    res = _ossec_res((folder / "res").read_text())
    event = parse_line(line, _ctx())
    assert event.collector_parser == "sshd"
    if "srcip" in res:
        assert event.source_ip == res["srcip"]
    if "user" in res:
        assert event.actor_name == res["user"]
    if case in ("40", "41"):  # OSSEC did not frame "Aug 1" (one-digit day); we do
        assert res == {}
        assert (event.actor_name, event.source_ip, event.source_port) == (
            "ss7",
            "65.202.215.2",
            18546,
        )


def test_ossec_logtesting_line_without_header_is_unparsed() -> None:
    """OSSEC's header-less sample (`sshd[7386]: error: ...`) is kept as unparsed, not dropped."""
    line = (DATA / "ossec/contrib/logtesting/38/log").read_text().rstrip("\n")
    event = parse_line(line, _ctx())
    assert (event.category, event.reason, event.raw) == ("unparsed", "no_syslog_framing", line)


def test_golden_file() -> None:
    """Each real line of golden.log yields exactly the event recorded in golden.jsonl."""
    lines = (DATA / "sshd/golden.log").read_text().splitlines()
    expected = [orjson.loads(x) for x in (DATA / "sshd/golden.jsonl").read_text().splitlines()]
    assert len(lines) == len(expected) == 51
    for line, want in zip(lines, expected, strict=True):
        doc = to_document(parse_line(line, _ctx()))
        for key in ("v", "id", "raw"):
            doc.pop(key, None)
        assert doc == want, line


@pytest.mark.parametrize(
    ("text", "user", "method", "key_type", "fingerprint"),
    [
        (
            "Accepted publickey for alice from 10.0.0.1 port 50022 ssh2: ED25519 "
            "SHA256:M1Zt7m6V0D4nHtgyTnXqqRnV6t6P1yJb0ZDmB9h2uE4",
            "alice",
            "publickey",
            "ED25519",
            "SHA256:M1Zt7m6V0D4nHtgyTnXqqRnV6t6P1yJb0ZDmB9h2uE4",
        ),
        (
            "Accepted publickey for vagrant from 10.0.0.1 port 63673 ssh2: RSA "
            "39:33:99:e9:a0:dc:f2:33:a3:e5:72:3b:7c:3a:56:84",
            "vagrant",
            "publickey",
            "RSA",
            "39:33:99:e9:a0:dc:f2:33:a3:e5:72:3b:7c:3a:56:84",
        ),
        ("Accepted keyboard-interactive/pam for bob from 10.0.0.1 port 1 ssh2", "bob",
         "keyboard-interactive/pam", None, None),
        ("Accepted gssapi-with-mic for carol from 10.0.0.1 port 1 ssh2", "carol",
         "gssapi-with-mic", None, None),
        ("Accepted hostbased for dave from 10.0.0.1 port 1 ssh2: RSA SHA256:abc", "dave",
         "hostbased", "RSA", "SHA256:abc"),
    ],
)  # fmt: skip
def test_accepted_methods(
    text: str, user: str, method: str, key_type: str | None, fingerprint: str | None
) -> None:
    """Accepted logins keep the method, and for keys the key type and fingerprint."""
    event = _parse(text)
    assert (event.action, event.outcome, event.category) == (
        "ssh.login",
        "success",
        "authentication",
    )
    assert (event.actor_name, event.actor_auth_method, event.source_ip) == (
        user,
        method,
        "10.0.0.1",
    )
    assert event.details.get("key_type") == key_type
    assert event.details.get("key_fingerprint") == fingerprint


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Failed password for root from 10.0.0.1 port 2 ssh2", "bad_password"),
        ("Failed publickey for root from 10.0.0.1 port 2 ssh2: RSA SHA256:abc", "bad_key"),
        ("Failed none for root from 10.0.0.1 port 2 ssh2", "no_auth_method"),
        ("Failed keyboard-interactive/pam for root from 10.0.0.1 port 2 ssh2", "bad_password"),
        ("Failed password for invalid user oracle from 10.0.0.1 port 2 ssh2", "invalid_user"),
        ("error: PAM: Authentication failure for root from 10.0.0.1", "pam_failure"),
        ("PAM 2 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= "
         "rhost=10.0.0.1  user=root", "pam_failure"),
        ("error: maximum authentication attempts exceeded for root from 10.0.0.1 port 2 ssh2 "
         "[preauth]", "max_attempts"),
        ("Disconnecting authenticating user root 10.0.0.1 port 2: Too many authentication "
         "failures [preauth]", "max_attempts"),
        ("User root from 10.0.0.1 not allowed because not listed in AllowUsers", "denied"),
        ("ROOT LOGIN REFUSED FROM 10.0.0.1 port 2", "root_refused"),
    ],
)  # fmt: skip
def test_failures_and_their_reasons(text: str, reason: str) -> None:
    """Each kind of failed login is an ssh.login failure with the vocabulary's reason."""
    event = _parse(text)
    assert (event.action, event.outcome, event.reason) == ("ssh.login", "failure", reason)
    assert event.source_ip == "10.0.0.1"
    assert event.actor_name == ("oracle" if "oracle" in text else "root")


def test_old_pam_tag_lines_belong_to_the_pam_parser() -> None:
    """`sshd(pam_unix)` lines (pre-0.99.2 Linux-PAM tag) are not parsed as sshd's own."""
    line = (
        "Nov 11 22:46:29 localhost sshd(pam_unix)[15794]: 2 more authentication failures; "
        "logname= uid=0 euid=0 tty=ssh ruser= rhost=10.0.3.1  user=root"
    )  # from ossec-testing/tests/pam.ini
    framed = split_syslog(line, _ctx())
    assert framed is not None
    assert sshd.parse(framed) is None
    assert parse_line(line, _ctx()).collector_parser != "sshd"


def test_sshd_own_pam_report_counts_attempts() -> None:
    """sshd's `PAM N more authentication failures` keeps N, the user and the remote host."""
    event = _parse(
        "PAM 5 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= "
        "rhost=218.2.0.1  user=root"
    )
    assert (event.action, event.reason, event.actor_name, event.source_ip) == (
        "ssh.login",
        "pam_failure",
        "root",
        "218.2.0.1",
    )
    assert event.details["attempts"] == 5


def test_pam_unix_lines_are_left_to_the_pam_parser() -> None:
    """`pam_unix(sshd:...)` messages are not sshd's: parse returns None."""
    for text in (
        "pam_unix(sshd:session): session opened for user root(uid=0) by (uid=0)",
        "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= "
        "rhost=10.0.0.1  user=root",
    ):
        assert sshd.parse(_msg(text)) is None


@pytest.mark.parametrize(
    ("text", "action", "reason", "extra"),
    [
        ("Unable to negotiate with 10.0.0.1 port 2: no matching key exchange method found. "
         "Their offer: diffie-hellman-group1-sha1,diffie-hellman-group14-sha1 [preauth]",
         "ssh.connection", "negotiation_failed",
         {"client_offer": ["diffie-hellman-group1-sha1", "diffie-hellman-group14-sha1"],
          "negotiation": "key exchange method", "preauth": True}),
        ("banner exchange: Connection from 10.0.0.1 port 2: invalid format", "ssh.connection",
         "banner_exchange_failed", {"description": "invalid format"}),
        ("Did not receive identification string from 10.0.0.1 port 2", "ssh.connection",
         "no_identification", {}),
        ("fatal: Timeout before authentication for 10.0.0.1 port 2", "ssh.connection",
         "timeout", {}),
        ("Received disconnect from 10.0.0.1 port 2:11: Bye Bye [preauth]", "ssh.disconnect",
         None, {"disconnect_code": 11, "description": "Bye Bye", "preauth": True}),
        ("Connection closed by 10.0.0.1 port 2 [preauth]", "ssh.disconnect", None,
         {"preauth": True}),
        ("Connection reset by 10.0.0.1 port 2 [preauth]", "ssh.disconnect", None,
         {"preauth": True}),
        ("Disconnected from 10.0.0.1 port 2 [preauth]", "ssh.disconnect", None,
         {"preauth": True}),
    ],
)  # fmt: skip
def test_connections_and_disconnects(
    text: str, action: str, reason: str | None, extra: dict[str, object]
) -> None:
    """Pre-authentication connection failures and disconnects keep source and details."""
    event = _parse(text)
    assert (event.action, event.reason) == (action, reason)
    assert (event.source_ip, event.source_port) == ("10.0.0.1", 2)
    for key, value in extra.items():
        assert event.details[key] == value


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Disconnected from invalid user a b 10.0.0.1 port 2 [preauth]", "invalid"),
        ("Disconnected from authenticating user a b 10.0.0.1 port 2 [preauth]", "auth"),
        ("Connection closed by authenticating user a b 10.0.0.1 port 2 [preauth]", "auth"),
        ("Disconnected from user a b 10.0.0.1 port 2", "user"),
    ],
)
def test_disconnects_with_a_user(text: str, kind: str) -> None:
    """Disconnects that name a user keep it, even with a space in it."""
    event = _parse(text)
    assert (event.action, event.actor_name, event.source_ip) == (
        "ssh.disconnect",
        "a b",
        "10.0.0.1",
    )
    assert event.details.get("invalid_user", False) is (kind == "invalid")
    assert event.details.get("preauth", False) is (kind != "user")


def test_sessions_opened_and_closed_by_sshd() -> None:
    """sshd's own VERBOSE session lines become ssh.session_open / ssh.session_close."""
    opened = _parse("Starting session: shell on pts/0 for root from 10.0.0.1 port 2 id 0")
    closed = _parse("Close session: user root from 10.0.0.1 port 2 id 0")
    assert (opened.action, opened.category, opened.actor_name, opened.actor_session) == (
        "ssh.session_open",
        "session",
        "root",
        "0",
    )
    assert (closed.action, closed.source_ip, closed.source_port) == (
        "ssh.session_close",
        "10.0.0.1",
        2,
    )


@pytest.mark.parametrize("program", sorted(sshd.PROGRAMS))
def test_every_program_name_reaches_the_parser(program: str) -> None:
    """sshd, sshd-session, sshd-auth and the other tags all dispatch to this parser."""
    line = f"2024-05-01T10:00:00Z host1 {program}[7]: Accepted password for u from ::1 port 9 ssh2"
    event = parse_line(line, _ctx())
    assert (event.collector_parser, event.action, event.source_ip) == ("sshd", "ssh.login", "::1")


HOSTILE = [
    # (message, user sshd was given, real address)
    ("Failed password for invalid user x from 6.6.6.6 port 1 ssh2 from 10.9.8.7 port 22 ssh2",
     "x from 6.6.6.6 port 1 ssh2", "10.9.8.7"),
    ("Failed password for invalid user a from 6.6.6.6 port 1 ssh2: RSA SHA256:x ID "
     "from 10.9.8.7 port 22 ssh2", "a from 6.6.6.6 port 1 ssh2: RSA SHA256:x ID", "10.9.8.7"),
    ("Invalid user r from 6.6.6.6 port 1 from 10.9.8.7 port 22", "r from 6.6.6.6 port 1",
     "10.9.8.7"),
    ("Invalid user from 6.6.6.6 from 10.9.8.7", "from 6.6.6.6", "10.9.8.7"),
    ("error: maximum authentication attempts exceeded for invalid user m from 6.6.6.6 port 1 "
     "ssh2 from 10.9.8.7 port 22 ssh2 [preauth]", "m from 6.6.6.6 port 1 ssh2", "10.9.8.7"),
    ("Disconnected from invalid user d 6.6.6.6 port 1 10.9.8.7 port 22 [preauth]",
     "d 6.6.6.6 port 1", "10.9.8.7"),
    ("Connection closed by invalid user c 6.6.6.6 port 1 10.9.8.7 port 22 [preauth]",
     "c 6.6.6.6 port 1", "10.9.8.7"),
    ("Disconnecting invalid user t 6.6.6.6 port 1: Too many authentication failures "
     "10.9.8.7 port 22: Too many authentication failures [preauth]",
     "t 6.6.6.6 port 1: Too many authentication failures", "10.9.8.7"),
    ("User u from 6.6.6.6 not allowed because x from 10.9.8.7 not allowed because listed in "
     "DenyUsers", "u from 6.6.6.6 not allowed because x", "10.9.8.7"),
    ("error: PAM: Authentication failure for illegal user p from 6.6.6.6 from 10.9.8.7",
     "p from 6.6.6.6", "10.9.8.7"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "user", "addr"), HOSTILE)
def test_hostile_user_names_do_not_move_the_source(text: str, user: str, addr: str) -> None:
    """A user name containing ` from IP port N` never replaces the address sshd appended."""
    event = _parse(text)
    assert event.source_ip == addr
    assert event.actor_name == user


def test_non_ip_address_goes_to_source_host() -> None:
    """A remote 'address' that is not an IP (anonymised, DNS name) lands in source.host."""
    event = _parse(
        "error: maximum authentication attempts exceeded for root from 183.106.179.x "
        "port 34100 ssh2 [preauth]"
    )
    assert (event.source_ip, event.source_host, event.source_port) == (
        None,
        "183.106.179.x",
        34100,
    )


def test_unknown_and_truncated_messages_return_none() -> None:
    """Noise, truncations and empty messages are not guessed at."""
    for text in ("", "Accepted", "Server listening on 0.0.0.0 port 22.", "PAM", "1", "User x"):
        assert sshd.parse(_msg(text)) is None


@given(st.text())
@settings(max_examples=500)
def test_parse_never_raises(text: str) -> None:
    """Arbitrary message text never raises and only ever yields a well-formed event."""
    for program in ("sshd", "sshd(pam_unix)"):
        event = sshd.parse(_msg(text, program))
        if event is not None:
            assert event.category in CATEGORIES
            assert event.outcome in OUTCOMES
            assert event.action.startswith("ssh.")


_WORDS = st.sampled_from(
    ["Accepted", "Failed", "Invalid", "user", "invalid", "from", "port", "ssh2", "1.2.3.4",
     "::1", "22", "for", "password", "[preauth]", "Disconnected", "Connection", "closed", "by",
     "error:", "PAM:", "User", "not allowed because", "Received", "disconnect", ":11:", " "]
)  # fmt: skip


@given(st.one_of(st.text(), st.lists(st.one_of(_WORDS, st.text()), max_size=12).map(" ".join)))
@settings(max_examples=500)
def test_framed_arbitrary_lines_never_raise(text: str) -> None:
    """Any framed sshd line goes through parse_line without raising and keeps its raw text."""
    line = f"Feb 21 21:54:44 host1 sshd[3402]: {text}"
    event = parse_line(line, _ctx())
    assert event.raw == line
    if event.source_ip is not None:
        assert event.source_ip in line or ":" in event.source_ip


def test_client_quoted_description_cannot_move_the_source() -> None:
    """Text the client sent, quoted in a disconnect description, never supplies the address."""
    msg = SyslogMessage(
        0, "h", "sshd", 1,
        "Disconnecting authenticating user root 1.2.3.4 port 22: Change of username or service"
        " not allowed: (root,ssh-connection) -> (x 6.6.6.6 port 1: y,ssh-connection)",
    )  # fmt: skip
    event = sshd.parse(msg)
    assert event is not None
    assert (event.actor_name, event.source_ip, event.source_port) == ("root", "1.2.3.4", 22)
