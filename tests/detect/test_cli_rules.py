"""``keeptrail rules`` and the ingest hook, as a user runs them (real processes, real store)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from keeptrail.detect.alerts import AlertStore

BRUTE_LOG = (
    "".join(
        f"Nov 20 03:0{k // 10}:{k % 10:02d} web-1 sshd[{100 + k}]: Failed password for root from "
        f"203.0.113.9 port {40000 + k} ssh2\n"
        for k in range(12)
    )
    + "Nov 20 03:02:00 web-1 sudo:     bob : user NOT in sudoers ; TTY=pts/1 ; "
    "PWD=/home/bob ; USER=root ; COMMAND=/bin/ls\n"
)

SITE_RULE = """\
id: site-root-failures
title: Root failures
severity: medium
tags: [attack.t1110]
match: action:ssh.login outcome:failure user:root
group_by: [target.host]
window: 1h
threshold: 3
"""


def kt(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KEEPTRAIL_DATA_DIR": str(data_dir), "COLUMNS": "200", "TZ": "UTC"}
    env.pop("KEEPTRAIL_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "keeptrail", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "auth.log"
    path.write_text(BRUTE_LOG)
    stamp = 1_795_700_000  # 2026-11-20, after the lines: a finished file of this year
    os.utime(path, (stamp, stamp))
    return path


def test_ingest_runs_the_pack_and_says_so(tmp_path: Path, log: Path) -> None:
    """A plain ingest raises the brute-force and sudoers alerts and prints a summary line."""
    data = tmp_path / "data"
    out = kt("ingest", "-q", str(log), data_dir=data)
    assert out.returncode == 0, out.stderr
    assert "detection: 3 new alert(s)" in out.stdout
    rules = {a.rule_id for a in AlertStore(data / "detect.db").list()}
    assert rules == {"ssh-brute-force-source", "ssh-brute-force-account", "sudo-not-in-sudoers"}
    again = kt("ingest", "-q", str(log), data_dir=data)
    assert "detection: 0 new alert(s), 0 update(s)" in again.stdout  # nothing evaluated twice


def test_no_detect_and_a_broken_rule_never_stop_ingest(tmp_path: Path, log: Path) -> None:
    """--no-detect skips the engine; a broken site rule is a warning, events are still stored."""
    data = tmp_path / "data"
    out = kt("ingest", "-q", "--no-detect", str(log), data_dir=data)
    assert out.returncode == 0
    assert "detection" not in out.stdout
    assert not (data / "detect.db").exists()
    (data / "rules").mkdir()
    (data / "rules" / "bad.yaml").write_text("id: x\ntitle: y\nseverity: urgent\nmatch: a\n")
    log.write_text(BRUTE_LOG.replace("Nov 20", "Nov 21"))
    os.utime(log, (1_795_800_000, 1_795_800_000))
    out = kt("ingest", "-q", str(log), data_dir=data)
    assert out.returncode == 0, out.stderr
    assert "warning: detection is off for this run" in out.stderr
    assert "severity" in out.stderr
    assert "13 new events" in out.stdout


def test_rules_list_shows_pack_and_site_rules(tmp_path: Path) -> None:
    """list --json has the pack and <data-dir>/rules; [detect] disabled hides a rule."""
    data = tmp_path / "data"
    (data / "rules").mkdir(parents=True)
    (data / "rules" / "site.yaml").write_text(SITE_RULE)
    (data / "keeptrail.toml").write_text('[detect]\ndisabled = ["root-login"]\n')
    out = kt("rules", "list", "--json", data_dir=data)
    assert out.returncode == 0, out.stderr
    rows = {r["id"]: r for r in orjson.loads(out.stdout)}
    assert rows["site-root-failures"]["source"].endswith("site.yaml")
    assert rows["ssh-brute-force-source"]["source"] == "pack"
    assert "root-login" not in rows
    table = kt("rules", "list", data_dir=data)
    assert "site-root-failures" in table.stdout
    assert "threshold" in table.stdout


def test_validate_reports_the_first_problem_in_one_line(tmp_path: Path) -> None:
    """A valid file is listed; an invalid one is exit 2 with file, rule and field."""
    good = tmp_path / "good.yaml"
    good.write_text(SITE_RULE)
    out = kt("rules", "validate", str(good), data_dir=tmp_path)
    assert out.returncode == 0
    assert "1 rule(s) valid: site-root-failures" in out.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(SITE_RULE.replace("window: 1h", "window: 1 hour"))
    out = kt("rules", "validate", str(bad), data_dir=tmp_path)
    assert out.returncode == 2
    assert f"{bad}: rule 'site-root-failures': window: invalid duration" in out.stderr
    assert "Traceback" not in out.stderr


def test_rules_test_retro_hunts_without_storing(tmp_path: Path, log: Path) -> None:
    """test replays stored history through a new rule and shows the alert, storing nothing."""
    data = tmp_path / "data"
    assert kt("ingest", "-q", "--no-detect", str(log), data_dir=data).returncode == 0
    rule = tmp_path / "site.yaml"
    rule.write_text(SITE_RULE)
    out = kt("rules", "test", str(rule), "--since", "2026-01-01", data_dir=data)
    assert out.returncode == 0, out.stderr
    assert "[medium] site-root-failures: Root failures" in out.stdout
    assert "key: target.host=web-1" in out.stdout
    assert "3 matching events within 1h for target.host=web-1 (threshold 3)" in out.stdout
    assert "1 alert(s) from 12 matching event(s)" in out.stdout
    assert "nothing was stored" in out.stdout
    assert not (data / "detect.db").exists()
    as_json = orjson.loads(
        kt("rules", "test", str(rule), "--since", "2026-01-01", "--json", data_dir=data).stdout
    )
    assert as_json["alerts"] == 1
    assert as_json["shown"][0]["count"] == 12
