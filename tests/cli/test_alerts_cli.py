"""``keeptrail alerts list|show|ack|resolve`` on a real detect.db and a real event store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from keeptrail.cli.main import app
from keeptrail.detect.alerts import Alert, AlertStore, Evidence
from keeptrail.notify.outbox import OUTBOX_FILE, Outbox
from keeptrail.query.parse import parse
from keeptrail.store import open_store

T0 = 1_750_000_000_000_000


def _alert(rule: str, key: dict[str, str], severity: str = "high", summary: str = "s") -> Alert:
    return Alert(
        id="",
        rule_id=rule,
        title=f"title of {rule}",
        severity=severity,
        tags=["attack.t1110"],
        key=key,
        first_time=T0,
        last_time=T0 + 1,
        count=3,
        evidence=[Evidence("01a2b3c4-0000-7000-8000-0000000000e1", T0, summary)],
        reason="3 matching events within 10m",
        status="open",
        created_at=T0,
        updated_at=T0,
        history=[],
    )


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "data"
    store = open_store(directory)  # the event store the transitions are appended to
    store.close()
    alerts = AlertStore(directory / "detect.db")
    alerts.upsert(_alert("ssh-brute", {"source.ip": "203.0.113.9"}))
    alerts.upsert(_alert("sudo-fail", {"actor.name": "bob"}, "medium", "evil \x1b[31mred"))
    alerts.close()
    return directory


def run(*args: str) -> tuple[int, str]:
    """The command in-process (fast); errors propagate as exceptions, see :func:`run_cli`."""
    result = CliRunner().invoke(app, ["alerts", *args], catch_exceptions=False)
    return result.exit_code, result.output


def run_cli(*args: str) -> tuple[int, str]:
    """The real command (a subprocess), so exit statuses are the ones a user sees."""
    done = subprocess.run(
        [sys.executable, "-m", "keeptrail", "alerts", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        timeout=60,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


def _ids(data_dir: Path, *extra: str) -> list[str]:
    code, out = run("list", "-d", str(data_dir), "--format", "json", *extra)
    assert code == 0, out
    return [a["id"] for a in json.loads(out)]


def test_list_filters_and_show(data_dir: Path) -> None:
    assert len(_ids(data_dir)) == 2
    assert len(_ids(data_dir, "--rule", "ssh-brute")) == 1
    assert _ids(data_dir, "--status", "resolved") == []
    code, out = run("list", "-d", str(data_dir))
    assert code == 0
    assert "ssh-brute" in out
    assert "source.ip=203.0.113.9" in out
    (sudo_id,) = _ids(data_dir, "--rule", "sudo-fail")
    code, out = run("show", sudo_id, "-d", str(data_dir))
    assert code == 0
    assert "why       3 matching events within 10m" in out
    assert "evil \\x1b[31mred" in out
    assert "\x1b" not in out  # log text cannot drive the terminal
    assert "(raised by the engine)" in out
    assert "notifications" not in out  # none configured


def test_show_lists_the_notifications_of_an_alert(data_dir: Path) -> None:
    (alert_id,) = _ids(data_dir, "--rule", "ssh-brute")
    outbox = Outbox(data_dir / OUTBOX_FILE)
    delivery = outbox.enqueue("siem", alert_id, "ssh-brute", b"{}", T0)
    outbox.failed(delivery, "syslog tcp to siem:514: Connection refused")
    outbox.close()
    code, out = run("show", alert_id, "-d", str(data_dir))
    assert code == 0
    assert "siem  failed after 1 attempt(s): syslog tcp to siem:514: Connection refused" in out
    code, out = run("show", alert_id, "-d", str(data_dir), "--json")
    assert json.loads(out)["deliveries"][0]["state"] == "failed"


def test_ack_then_resolve_is_recorded_in_the_ledger(data_dir: Path) -> None:
    (alert_id,) = _ids(data_dir, "--rule", "ssh-brute")
    code, out = run("ack", alert_id, "-d", str(data_dir), "--comment", "on it", "--by", "alice")
    assert code == 0, out
    code, out = run("resolve", alert_id, "-d", str(data_dir), "-m", "pentest SEC-42", "--by", "bob")
    assert code == 0, out
    code, out = run("show", alert_id, "-d", str(data_dir), "--json")
    doc = json.loads(out)
    assert doc["status"] == "resolved"
    assert [(h["status"], h["by"], h["comment"]) for h in doc["history"]] == [
        ("acknowledged", "alice", "on it"),
        ("resolved", "bob", "pentest SEC-42"),
    ]
    store = open_store(data_dir)
    try:
        page = store.search(parse("category:alert"), limit=10)
    finally:
        store.close()
    steps = sorted((e.action, e.actor_name, e.details["comment"]) for e in page.events)
    assert steps == [
        ("alert.acknowledged", "alice", "on it"),
        ("alert.resolved", "bob", "pentest SEC-42"),
    ]
    assert all(e.target_resource == alert_id for e in page.events)
    code, out = run_cli("ack", alert_id, "-d", str(data_dir), "-m", "again")
    assert code == 2
    assert "it cannot become acknowledged" in out


def test_bad_input_is_one_line(data_dir: Path, tmp_path: Path) -> None:
    (alert_id,) = _ids(data_dir, "--rule", "ssh-brute")
    code, out = run_cli("ack", alert_id, "-d", str(data_dir), "--comment", "   ")
    assert code == 2
    assert "a comment is required" in out
    code, out = run_cli("show", "no-such-id", "-d", str(data_dir))
    assert code == 2
    assert "no alert with id" in out
    code, out = run_cli("list", "-d", str(tmp_path / "empty"))
    assert code == 2
    assert "has not run there yet" in out
    code, out = run_cli("list", "-d", str(data_dir), "--format", "xml")
    assert code == 2
