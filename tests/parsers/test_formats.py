"""Per-file format detection: each real sample is read by the parser made for it."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from keeptrail.errors import UserError
from keeptrail.parsers.formats import STREAM_FORMATS, choose_format, format_names
from keeptrail.sources.files import first_line

DATA = Path(__file__).parent.parent / "data"
SAMPLES = Path(__file__).parents[2] / "src" / "keeptrail" / "samples"

CASES = [
    (SAMPLES / "auth.log", "syslog"),
    (SAMPLES / "secure-rfc3339.log", "syslog"),
    (DATA / "beats/filebeat/module/system/auth/test/test.log", "syslog"),
    (DATA / "go-libaudit/auparse/testdata/audit-rhel7.log", "auditd"),
    (DATA / "beats/filebeat/module/auditd/log/test/useradd.log", "auditd"),
    (DATA / "falco/test/trace_files/k8s_audit/attach_pod.json", "k8s_audit"),
    (DATA / "pgbadger/t/fixtures/begin_end.log", "postgres"),
    (
        DATA / "beats/filebeat/module/postgresql/log/test/"
        "postgresql-11-connection-disconnection.csv.log",
        "postgres",
    ),
    (DATA / "percona-toolkit/t/lib/samples/genlogs/genlog001.txt", "mysql"),
]


@pytest.mark.parametrize(("path", "expected"), CASES, ids=lambda v: getattr(v, "name", v))
def test_auto_detection_picks_the_right_format(path: Path, expected: str) -> None:
    """--format auto sniffs the first line of each real sample and picks its own parser."""
    assert expected == choose_format("auto", first_line(path)).NAME


def test_web_access_lines_are_detected() -> None:
    """A combined-format access line is read by the web access parser."""
    line = (
        '203.0.113.9 - alice [10/Oct/2024:13:55:36 +0000] "GET /admin HTTP/1.1" 403 199 '
        '"-" "curl/8.0"'
    )
    assert choose_format("auto", line).NAME == "web_access"


def test_journald_export_lines_are_detected() -> None:
    """A `journalctl -o json` line (the beats sample, one object per line) is journald's."""
    sample = (
        DATA / "beats/filebeat/input/journald/pkg/journalctl/testdata/sample-journal-event.json"
    )
    line = orjson.dumps(orjson.loads(sample.read_bytes())).decode()
    assert choose_format("auto", line).NAME == "journald"


def test_app_json_is_detected_by_its_schema_marker() -> None:
    """An application event carrying the schema marker is read as application JSON."""
    line = (
        '{"schema":"keeptrail.event/v1","time":"2024-01-01T00:00:00Z","category":"api",'
        '"action":"app.export","outcome":"success"}'
    )
    assert choose_format("auto", line).NAME == "app_json"


def test_no_two_stream_formats_claim_the_same_sample_line() -> None:
    """Across every sample line, at most one stream format's sniff accepts it."""
    checked = 0
    for path in DATA.rglob("*"):
        if not path.is_file() or path.suffix in {".gz", ".bz2", ".md", ".xml", ".golden"}:
            continue
        for line in path.read_text(errors="replace").splitlines()[:200]:
            claimed = [name for name, fmt in STREAM_FORMATS.items() if fmt.sniff(line)]
            assert len(claimed) <= 1, (path, line, claimed)
            checked += 1
    assert checked > 1000


def test_named_formats_and_aliases() -> None:
    """Formats can be named, aliases resolve, and an unknown name is a clear error."""
    assert choose_format("nginx", None).NAME == "web_access"
    assert choose_format("sshd", None).NAME == "sshd"
    assert choose_format("auditd", None).NAME == "auditd"
    assert {"auto", "syslog", "auditd", "postgres", "k8s_audit"} <= set(format_names())
    with pytest.raises(UserError, match="unknown format"):
        choose_format("nope", None)
