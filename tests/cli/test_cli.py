"""The command line end to end, as a user runs it: real processes, real files, real store."""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

AUTH_LOG = """\
Feb 21 21:54:44 localhost sshd[3402]: Accepted publickey for vagrant from 10.0.2.2 port 63673 ssh2: RSA 39:33:99:e9:a0:dc:f2:33:a3:e5:72:3b:7c:3a:56:84
Feb 23 00:13:35 localhost sshd[7483]: Accepted password for vagrant from 192.168.33.1 port 58803 ssh2
Feb 21 21:56:12 localhost sshd[3430]: Invalid user test from 10.0.2.2
Feb 20 08:35:22 slave22 sshd[5774]: Failed password for root from 216.160.83.57 port 29160 ssh2
Feb 21 23:35:33 localhost sudo: vagrant : TTY=pts/0 ; PWD=/home/vagrant ; USER=root ; COMMAND=/bin/ls
Feb 24 00:13:02 precise32 sudo:      tsg : user NOT in sudoers ; TTY=pts/1 ; PWD=/home/vagrant ; USER=root ; COMMAND=/bin/ls
Feb 22 11:47:05 localhost useradd[6995]: new user: name=apache, UID=48, GID=48, home=/usr/share/httpd, shell=/sbin/nologin
Feb 22 11:47:06 localhost sshd[1]: Failed password for =cmd|' /C calc'!A0 from 216.160.83.57 port 1 ssh2
Feb 22 11:47:07 localhost sshd[2]: Invalid user \x1b[2J\x1b[31mevil from 216.160.83.57 port 2
"""  # noqa: E501


def kt(*args: str, data_dir: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KEEPTRAIL_DATA_DIR": str(data_dir), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "keeptrail", *args],
        capture_output=True,
        text=True,
        env=env,
        input=stdin,
        timeout=60,
        check=False,
    )


@pytest.fixture
def loaded(tmp_path: Path) -> Path:
    """A data directory with AUTH_LOG ingested through the CLI."""
    log = tmp_path / "auth.log"
    log.write_text(AUTH_LOG)
    os.utime(log, (1_709_000_000, 1_709_000_000))
    data = tmp_path / "data"
    # Without detection: these tests count the nine lines' events, not the alerts they raise.
    result = kt("ingest", str(log), "--timezone", "UTC", "--no-detect", data_dir=data)
    assert result.returncode == 0, result.stderr
    assert "9 lines → 9 events (9 parsed, 0 unparsed)" in result.stdout
    return data


def test_search_jsonl_returns_matching_documents(loaded: Path) -> None:
    """A field query returns the matching events as JSON lines, newest first."""
    out = kt("search", "user:vagrant", "--format", "jsonl", data_dir=loaded)
    assert out.returncode == 0, out.stderr
    docs = [orjson.loads(line) for line in out.stdout.splitlines()]
    assert [d["action"] for d in docs] == ["ssh.login", "sudo.command", "ssh.login"]
    assert all(d["actor"]["name"] == "vagrant" for d in docs)
    assert docs[0]["time"] == "2024-02-23T00:13:35.000000Z"


def test_search_cidr_and_outcome(loaded: Path) -> None:
    """CIDR and outcome filters combine as documented in the README."""
    out = kt("search", "outcome:failure AND ip:216.160.0.0/16", "-f", "json", data_dir=loaded)
    docs = orjson.loads(out.stdout)
    assert {d["source"]["ip"] for d in docs} == {"216.160.83.57"}
    assert len(docs) == 3


def test_invalid_query_points_at_the_position_without_traceback(loaded: Path) -> None:
    """A malformed query exits 2 with a caret under the problem and no traceback."""
    out = kt("search", "user:alice AND (outcome:failure", data_dir=loaded)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert "^" in out.stderr


def test_unknown_field_is_a_clear_error(loaded: Path) -> None:
    """An unknown field name is refused with a message naming it."""
    out = kt("search", "usr:alice", data_dir=loaded)
    assert out.returncode == 2
    assert "usr" in out.stderr
    assert "Traceback" not in out.stderr


def test_table_output_escapes_terminal_control_sequences(loaded: Path) -> None:
    """Escape sequences inside log lines are shown escaped, never sent to the terminal."""
    out = kt("search", "evil", data_dir=loaded)
    assert out.returncode == 0, out.stderr
    assert "\x1b[2J" not in out.stdout
    assert "\\x1b[2J" in out.stdout


def test_csv_output_neutralises_formulas(loaded: Path) -> None:
    """A cell starting with '=' is prefixed so a spreadsheet will not evaluate it."""
    out = kt("search", "calc", "--format", "csv", data_dir=loaded)
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert rows
    assert rows[0]["actor.name"].startswith("'=")


def test_stats_json_counts(loaded: Path) -> None:
    """stats --json reports totals, categories and top sources."""
    out = kt("stats", "--json", data_dir=loaded)
    doc = orjson.loads(out.stdout)
    assert doc["total"] == 9 + 1  # the nine lines and the ledger's ledger.key_created event
    assert doc["by_category"]["authentication"] >= 5
    assert doc["top_sources"]["216.160.83.57"] == 3


def test_reingest_adds_nothing(loaded: Path, tmp_path: Path) -> None:
    """Ingesting the same file again stores no duplicates."""
    out = kt("ingest", str(tmp_path / "auth.log"), "--no-detect", data_dir=loaded)
    assert out.returncode == 0, out.stderr
    assert "0 new events" in out.stdout or "0 lines" in out.stdout
    assert orjson.loads(kt("stats", "--json", data_dir=loaded).stdout)["total"] == 9 + 1


def test_stdin_ingest(tmp_path: Path) -> None:
    """Lines piped on standard input are ingested, the last one even without a newline."""
    data = tmp_path / "data"
    out = kt("ingest", "-", "--no-detect", data_dir=data, stdin=AUTH_LOG.rstrip("\n"))
    assert out.returncode == 0, out.stderr
    assert orjson.loads(kt("stats", "--json", data_dir=data).stdout)["total"] == 9 + 1


def test_search_without_store_is_a_clear_error(tmp_path: Path) -> None:
    """Searching where nothing was ingested says what to do instead of crashing."""
    out = kt("search", "user:x", data_dir=tmp_path / "nothing")
    assert out.returncode == 2
    assert "ingest something first" in out.stderr


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    """Ingesting a path that does not exist exits 2 with the path in the message."""
    out = kt("ingest", str(tmp_path / "nope.log"), data_dir=tmp_path / "d")
    assert out.returncode == 2
    assert "nope.log" in out.stderr
    assert "Traceback" not in out.stderr


def test_bad_since_is_a_clear_error(loaded: Path) -> None:
    """An unreadable --since value exits 2 without a traceback."""
    out = kt("search", "user:x", "--since", "yesterdayish", data_dir=loaded)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr


def test_demo_ingests_samples_and_reports_findings(tmp_path: Path) -> None:
    """The demo covers every parser family and shows the four findings tables."""
    out = kt("demo", "--data-dir", str(tmp_path / "demo"), data_dir=tmp_path / "unused")
    assert out.returncode == 0, out.stderr
    for title in (
        "Failed authentication by source",
        "Successful SSH logins",
        "sudo",
        "Account and group changes",
    ):
        assert title in out.stdout
    stats = orjson.loads(kt("stats", "--json", data_dir=tmp_path / "demo").stdout)
    parsers = {a.split(".")[0] for a in (r["action"] for r in stats["by_action_outcome"])}
    assert {"ssh", "sudo", "su", "pam", "logind", "user", "group"} <= parsers


def test_demo_raises_the_pack_alerts_and_encrypts_every_partition(tmp_path: Path) -> None:
    """The samples hold a truncated auth.log, a docker group grant and a direct root login:
    the shipped rules raise them, they are recorded as ledger events, and every partition of
    the demo store is sealed."""
    out = kt("demo", "--data-dir", str(tmp_path / "demo"), data_dir=tmp_path / "unused")
    assert out.returncode == 0, out.stderr
    assert "Alerts raised by the shipped rules" in out.stdout
    for rule in ("log-cleared", "privileged-group-add", "root-login", "sudo-not-in-sudoers"):
        assert rule in out.stdout
    raised = kt("search", "action:alert.raised", "--format", "jsonl", data_dir=tmp_path / "demo")
    rules = {orjson.loads(line)["target"]["resource"] for line in raised.stdout.splitlines()}
    assert {"log-cleared", "root-login"} <= rules
    at_rest = re.search(r"At rest: (\d+) events in (\d+) partitions, (\d+) encrypted", out.stdout)
    assert at_rest is not None
    events, partitions, sealed = (int(x) for x in at_rest.groups())
    assert events > 0
    assert partitions == sealed > 0


def test_every_command_is_documented_in_the_readme(tmp_path: Path) -> None:
    """Each top-level command the CLI offers appears in README.md as `keeptrail <command>`."""
    from keeptrail.cli.main import app  # noqa: PLC0415

    names = {c.name for c in app.registered_commands} | {g.name for g in app.registered_groups}
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    undocumented = sorted(n for n in names if n and f"keeptrail {n}" not in readme)
    assert not undocumented


def test_help_shows_bracketed_text(tmp_path: Path) -> None:
    """Help texts are plain text: a default shown in [brackets] is not eaten as markup."""
    out = kt("search", "--help", data_dir=tmp_path)
    assert "[default: ~/.local/share/keeptrail]" in " ".join(out.stdout.split())


def test_error_messages_escape_control_sequences(tmp_path: Path) -> None:
    """An error quoting hostile text (here a file name) shows its escape codes, not runs them."""
    out = kt("ingest", str(tmp_path / "evil\x1b[2Jname.log"), data_dir=tmp_path / "d")
    assert out.returncode == 2
    assert "\x1b[2J" not in out.stderr
    assert "\\x1b[2J" in out.stderr
