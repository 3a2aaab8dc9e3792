"""Every sudo/su/PAM/shadow/systemd sample line of the Wazuh and OSSEC rule tests, end to end.

Each ``log N pass|fail = LINE`` sits in a section whose ``rule =`` says what the line is (the
rule XML files in ``tests/data/wazuh/ruleset/rules/`` give the meanings); the line must become
the action and outcome that rule id means. Lines left unparsed on purpose are listed with the
reason, so a line that silently stops parsing (or starts) fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from auth_golden import DATA, context

from keeptrail.parsers.detect import parse_line

INI_FILES = [
    "wazuh/ruleset/testing/tests/sudo.ini",
    "wazuh/ruleset/testing/tests/su.ini",
    "wazuh/ruleset/testing/tests/pam.ini",
    "wazuh/ruleset/testing/tests/user.ini",
    "wazuh/ruleset/testing/tests/systemd.ini",
    "wazuh/ruleset/testing/tests/syslog.ini",
    "ossec/contrib/ossec-testing/tests/sudo.ini",
    "ossec/contrib/ossec-testing/tests/su.ini",
    "ossec/contrib/ossec-testing/tests/pam.ini",
    "ossec/contrib/ossec-testing/tests/systemd.ini",
    "ossec/contrib/ossec-testing/tests/syslog.ini",
]

# rule id -> (action, outcome) the line must produce.
EXPECTED: dict[str, tuple[str, str]] = {
    "5401": ("sudo.command", "failure"),  # incorrect password attempt
    "5403": ("sudo.command", "success"),  # first time user executed sudo
    "5404": ("sudo.command", "failure"),  # three failed attempts
    "5405": ("sudo.command", "failure"),  # user NOT in sudoers
    "5301": ("su.switch", "failure"),  # BAD SU
    "5302": ("su.switch", "failure"),  # failed su to root
    "5305": ("su.switch", "success"),  # first time su
    "5501": ("pam.session_open", "success"),
    "5502": ("pam.session_close", "success"),
    "5503": ("pam.auth", "failure"),  # authentication failure; logname=
    "5504": ("pam.auth", "failure"),  # check pass; user unknown
    "2502": ("pam.auth", "failure"),  # N more authentication failures
    "5905": ("user.create", "failure"),  # useradd: failed adding user
}

# rule id -> why lines of that rule are not ours to parse.
UNPARSED_BY_DESIGN: dict[str, str] = {
    "999286": "a bare JSON object, not a syslog line (no_syslog_framing)",
    "40701": "systemd (pid 1) scope bookkeeping, not an access event",
    "40705": "systemd (pid 1) clock change, not an access event",
    "2941": "NetworkManager firewall error, not an access event",
    "2944": "kernel nouveau error, not an access event",
    "2945": "rsyslogd rate limiting, not an access event",
}

_LOG = re.compile(r"log (\d+) (pass|fail) = (.*)")


def _cases() -> list[tuple[str, str, str]]:
    cases: list[tuple[str, str, str]] = []
    for name in INI_FILES:
        pending: list[str] = []
        for raw in Path(DATA / name).read_text().splitlines():
            m = _LOG.fullmatch(raw.rstrip())
            if m is not None:
                pending.append(m[3])
            elif raw.startswith("rule = "):
                rule = raw.partition("=")[2].strip()
                cases.extend((name, rule, line) for line in pending)
                pending = []
    return cases


CASES = _cases()


def test_corpus_is_complete() -> None:
    """Every sample line has a rule id we either expect to parse or list as out of scope."""
    rules = {rule for _, rule, _ in CASES}
    assert len(CASES) >= 40
    assert rules <= EXPECTED.keys() | UNPARSED_BY_DESIGN.keys()


@pytest.mark.parametrize(("source", "rule", "line"), CASES)
def test_rule_sample(source: str, rule: str, line: str) -> None:
    """A rule's sample line becomes the action and outcome the rule id means, or stays unparsed."""
    event = parse_line(line, context())
    if rule in UNPARSED_BY_DESIGN:
        assert event.category == "unparsed", (source, line)
        return
    assert (event.action, event.outcome) == EXPECTED[rule], (source, line)
