"""The nginx/Apache access-log parser: formats, outcomes, hostile requests, and the corpora."""

from __future__ import annotations

import json
import re

import pytest
from auth_golden import DATA, context
from hypothesis import given, settings
from hypothesis import strategies as st
from stream_helpers import assert_lossless, feed_all, stream_context

from keeptrail.event import Event, parse_time
from keeptrail.parsers import web_access
from keeptrail.parsers.syslog import split_syslog

COMBINED = (
    '203.0.113.9 - alice [10/Oct/2023:13:55:36 -0700] "GET /admin/users?id=7 HTTP/1.1" 200 2326 '
    '"https://example.com/" "Mozilla/5.0 (X11)"'
)


def one(line: str, config: web_access.WebConfig | None = None) -> Event:
    events = feed_all(web_access.assembler(stream_context(), config), [line])
    assert_lossless([line], events)
    assert len(events) == 1
    return events[0]


def test_combined_line() -> None:
    """A combined line gives client, user, method, path, query, status, bytes, referrer, agent."""
    e = one(COMBINED)
    assert (e.category, e.action, e.outcome) == ("api", "http.request", "success")
    assert (e.actor_name, e.actor_type, e.source_ip) == ("alice", "user", "203.0.113.9")
    assert e.time == parse_time("2023-10-10T13:55:36-07:00")
    assert (e.target_resource, e.target_resource_type, e.target_system) == (
        "/admin/users",
        "url_path",
        "http",
    )
    assert e.details == {
        "protocol": "HTTP/1.1", "method": "GET", "path": "/admin/users", "query": "id=7",
        "status": 200, "bytes": 2326, "referrer": "https://example.com/",
        "user_agent": "Mozilla/5.0 (X11)",
    }  # fmt: skip


def test_common_and_vhost_combined() -> None:
    """The common format (no referrer/agent) and Apache's vhost_combined are read."""
    e = one('10.0.0.1 - - [01/Aug/2016:05:15:07 +0000] "POST /login HTTP/1.0" 401 12')
    assert (e.outcome, e.reason, e.actor_name, e.details["bytes"]) == (
        "failure",
        "unauthorized",
        None,
        12,
    )
    e = one(
        'www.example.com:80 1.1.1.1 - - [12/Mar/2019:10:09:12 +0000] "GET / HTTP/1.1" 200 10 "-" "x"'  # noqa: E501
    )
    assert (e.source_ip, e.details["vhost"]) == ("1.1.1.1", "www.example.com:80")


@pytest.mark.parametrize(
    ("status", "outcome", "reason"),
    [
        (200, "success", None), (302, "success", None), (401, "failure", "unauthorized"),
        (403, "failure", "forbidden"), (407, "failure", "unauthorized"),
        (429, "failure", "rate_limited"), (404, "unknown", None), (500, "unknown", None),
    ],
)  # fmt: skip
def test_outcome_by_status(status: int, outcome: str, reason: str | None) -> None:
    """Only refusals of access are failures; other errors leave the outcome unknown."""
    e = one(f'1.2.3.4 - - [01/Aug/2016:05:15:07 +0000] "GET / HTTP/1.1" {status} 0 "-" "-"')
    assert (e.outcome, e.reason, e.details["status"]) == (outcome, reason, status)


def test_user_name_cannot_forge_request_or_status() -> None:
    """A user name holding a fake date, request and status does not move the real ones."""
    line = (
        "1.2.3.4 - x [01/Jan/2020:00:00:00 +0000] GET /ok 200 [02/Feb/2021:00:00:00 +0000] "
        '"GET /admin HTTP/1.1" 403 5 "-" "-"'
    )
    e = one(line)
    assert (e.details["path"], e.details["status"], e.outcome) == ("/admin", 403, "failure")
    assert e.time == parse_time("2021-02-02T00:00:00Z")
    assert e.actor_name == "x [01/Jan/2020:00:00:00 +0000] GET /ok 200"


def test_escaped_quote_in_request_keeps_fields() -> None:
    """A request with an escaped quote (Apache ``\\"``, nginx ``\\x22``) stays in the request."""
    e = one(r'1.2.3.4 - - [01/Aug/2016:05:15:07 +0000] "GET /a\"b 200 1 HTTP/1.1" 404 7 "-" "-"')
    assert (e.details["status"], e.details["bytes"]) == (404, 7)
    assert e.details["path"] == r"/a\"b 200 1"


def test_forwarded_for_only_from_trusted_proxy() -> None:
    """X-Forwarded-For moves the source only when the direct client is a trusted proxy."""
    line = '10.0.0.2 - - [01/Aug/2016:05:15:07 +0000] "GET / HTTP/1.1" 200 1 "-" "-" "6.6.6.6, 198.51.100.4"'  # noqa: E501
    assert one(line).source_ip == "10.0.0.2"
    e = one(line, web_access.WebConfig(trusted_proxies=("10.0.0.0/8",)))
    assert (e.source_ip, e.details["proxy_ip"]) == ("198.51.100.4", "10.0.0.2")


def test_sensitive_endpoints() -> None:
    """Configured prefixes and globs flag matching paths, never the query string."""
    config = web_access.WebConfig(sensitive=("/admin", "/api/*/keys"))
    assert one(COMBINED, config).details["sensitive"] is True
    e = one('1.2.3.4 - - [01/Aug/2016:05:15:07 +0000] "GET /api/v1/keys HTTP/1.1" 200 1', config)
    assert e.details["sensitive"] is True
    e = one('1.2.3.4 - - [01/Aug/2016:05:15:07 +0000] "GET /x?next=/admin HTTP/1.1" 200 1', config)
    assert "sensitive" not in e.details


def test_nginx_json_with_custom_keys() -> None:
    """An ``escape=json`` record is read with the default keys, or with configured ones."""
    doc = {
        "time_iso8601": "2024-05-01T10:00:00+00:00", "remote_addr": "192.0.2.1",
        "remote_user": "", "request": "DELETE /api/items/3 HTTP/2.0", "status": "403",
        "body_bytes_sent": "0", "http_user_agent": "curl/8", "request_time": "0.002",
    }  # fmt: skip
    e = one(json.dumps(doc))
    assert (e.source_ip, e.outcome, e.reason, e.actor_name) == (
        "192.0.2.1",
        "failure",
        "forbidden",
        None,
    )
    assert (e.details["method"], e.details["path"], e.details["request_time"]) == (
        "DELETE",
        "/api/items/3",
        "0.002",
    )
    custom = web_access.WebConfig(json_keys={"client": ("ip",), "user": ("who",)})
    e = one(
        '{"ip":"2001:db8::1","who":"bob","uri":"/x","status":200,"msec":"1700000000.5"}', custom
    )
    assert (e.source_ip, e.actor_name, e.time) == ("2001:db8::1", "bob", 1_700_000_000_500_000)


def test_syslog_wrapped_line() -> None:
    """An access line sent through syslog is parsed by ``parse`` and not by the stream reader."""
    line = (
        "Jan 11 10:13:05 web01 nginx: 10.10.10.11 - - [10/Apr/2017:13:18:05 -0700] "
        '"GET /injection/%0d%0aSet-Cookie HTTP/1.1" 404 271 "-" "Mozilla/5.0"'
    )
    assert not web_access.sniff(line)
    assert one(line).action == "unparsed"
    msg = split_syslog(line, context())
    assert msg is not None
    assert msg.program in web_access.PROGRAMS
    e = web_access.parse(msg)
    assert e is not None
    assert (e.source_ip, e.details["path"], e.target_host) == (
        "10.10.10.11",
        "/injection/%0d%0aSet-Cookie",
        "web01",
    )


# --- corpora: the Wazuh and OSSEC web rule tests --------------------------------------------

INI = [
    "wazuh/ruleset/testing/tests/web_rules.ini",
    "wazuh/ruleset/testing/tests/web_appsec.ini",
    "wazuh/ruleset/testing/tests/nginx.ini",
    "wazuh/ruleset/testing/tests/apache.ini",
    "ossec/contrib/ossec-testing/tests/web_rules.ini",
    "ossec/contrib/ossec-testing/tests/nginx.ini",
    "ossec/contrib/ossec-testing/tests/apache.ini",
]
_LOG = re.compile(r"log \d+ (?:pass|fail) = (.*)")
_IIS = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ")  # IIS W3C lines: not ours


def _corpus() -> list[tuple[str, str]]:
    out = []
    for name in INI:
        for raw in (DATA / name).read_text().splitlines():
            m = _LOG.fullmatch(raw.rstrip())
            if m is not None:
                out.append((name, m[1]))
    return out


CORPUS = _corpus()


def test_corpus_counts() -> None:
    """The access lines parse; error-log (nginx.ini, apache.ini) and IIS lines stay unparsed."""
    counts = {"parsed": 0, "syslog": 0, "unparsed": 0}
    for name, line in CORPUS:
        e = one(line)
        if e.action == "http.request":
            counts["parsed"] += 1
            assert web_access.sniff(line)
        elif line.startswith("Jan 11"):
            counts["syslog"] += 1
        else:
            counts["unparsed"] += 1
            assert "nginx.ini" in name or "apache.ini" in name or _IIS.match(line), line
    assert counts == {"parsed": 39, "syslog": 3, "unparsed": 60}


@pytest.mark.parametrize(("source", "line"), [c for c in CORPUS if '"' in c[1] and '] "' in c[1]])
def test_attack_payloads_stay_in_their_fields(source: str, line: str) -> None:
    """SQL injection, XSS and traversal in a URL land in path/query and never elsewhere."""
    e = one(line)
    if e.action == "unparsed":
        return
    quoted = re.match(r'((?:[^"\\]|\\.)*)"', line.split('] "', 1)[1])
    assert quoted is not None
    target = " ".join(quoted[1].split(" ")[1:-1])
    assert (
        str(e.details["path"]) + ("?" + str(e.details["query"]) if "query" in e.details else "")
        == target
    )
    assert isinstance(e.details["status"], int)
    assert e.source_ip is not None
    assert e.source_ip in line.split(" ", 2)[:2]


@pytest.mark.parametrize(
    "line",
    [
        "Feb 11 13:15:39 host sshd[1]: Accepted password for x from 1.2.3.4 port 1 ssh2",
        '{"kind":"Event","apiVersion":"audit.k8s.io/v1","requestURI":"/api","responseStatus":{"code":200}}',
        '{"__REALTIME_TIMESTAMP":"1","MESSAGE":"x"}',
        '{"schema":"keeptrail.event/v1","action":"http.request","status":200}',
        '{"timestamp":"2024-01-01 00:00:00 UTC","error_severity":"LOG","message":"x"}',
        "2024-01-01 00:00:00.000 UTC [1] LOG:  statement: select 1",
        "20140402 10:22:11,myhost,root,localhost,2,5,QUERY,test,'select 1',0",
        "[Tue Sep 30 14:25:44.895897 2014] [authz_core:error] [pid 31858] [client 1.2.3.4:38870] AH01630: denied",  # noqa: E501
    ],
)
def test_sniff_rejects_other_formats(line: str) -> None:
    """Syslog, other JSON formats, PostgreSQL, MariaDB audit and error-log lines are not sniffed."""
    assert not web_access.sniff(line)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(exclude_characters="\n"), max_size=160), max_size=8))
def test_arbitrary_text_never_raises_or_loses_lines(lines: list[str]) -> None:
    """Any text yields one event per line with the line as raw."""
    assert_lossless(lines, feed_all(web_access.assembler(stream_context()), lines))


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(exclude_characters='\n"'), max_size=40), st.text(max_size=40))
def test_fuzzed_user_and_path_never_move_the_client(user: str, path: str) -> None:
    """Whatever the user and path, the client is the first field and the status is kept."""
    safe_path = path.replace('"', "%22").replace("\n", "%0A")
    line = f'192.0.2.44 - {user or "-"} [01/Aug/2016:05:15:07 +0000] "GET /{safe_path} HTTP/1.1" 418 3 "-" "-"'  # noqa: E501
    e = one(line)
    if e.action == "http.request":
        assert e.source_ip == "192.0.2.44"
        assert e.details["status"] == 418
