"""Parse throughput of the auditd, Kubernetes audit, application JSON and journald formats.

Each format's real samples from ``tests/data`` are replicated (serials and audit ids renumbered
so that copies stay distinct events) to at least ``--events`` events, written to a file, then
fed line by line through the format's assembler on one core. For auditd the same file also
goes through ``ausearch -i -if FILE`` (Debian's ``auditd`` package) in the same run, the tool
a user would otherwise reach for.

    .venv/bin/python bench/bench_formats_a.py            # 100k+ events per format
    .venv/bin/python bench/bench_formats_a.py --events 300000
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from keeptrail.parsers import app_json, auditd, journald, k8s_audit
from keeptrail.parsers.base import StreamContext

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
_SERIAL = re.compile(r"msg=audit\((\d+)\.(\d+):(\d+)\)")


def auditd_sample() -> list[list[str]]:
    """Whole auditd events (lists of records) from go-libaudit, laurel and beats samples."""
    events: list[list[str]] = []
    for path in sorted((DATA / "go-libaudit/aucoalesce/testdata").glob("*.yaml")):
        current: list[str] = []
        for raw in path.read_text().split("\n"):
            if raw.startswith("    type=") or raw.startswith("    node="):
                current.append(raw[4:])
            elif current:
                events.append(current)
                current = []
        if current:
            events.append(current)
    for path in sorted((DATA / "laurel/src/testdata").glob("record-*.txt")):
        lines = [x for x in path.read_bytes().decode().split("\n") if x.strip()]
        by_serial: dict[str, list[str]] = {}
        for line in lines:
            m = _SERIAL.search(line)
            if m:
                by_serial.setdefault(m[3], []).append(line)
        events += by_serial.values()
    beats = DATA / "beats/filebeat/module/auditd/log/test/useradd.log"
    events += [[line] for line in beats.read_text().splitlines()]
    return events


def auditd_lines(target: int) -> tuple[list[str], int]:
    """Replicated auditd lines with a fresh serial per event copy, and the event count."""
    sample = auditd_sample()
    lines: list[str] = []
    serial = 1
    count = 0
    while count < target:
        for event in sample:
            lines += [_SERIAL.sub(f"msg=audit(\\1.\\2:{serial})", line) for line in event]
            serial += 1
            count += 1
    return lines, count


def k8s_lines(target: int) -> tuple[list[str], int]:
    """Replicated Falco k8s audit lines with auditIDs made unique per copy."""
    sample = []
    for path in sorted((DATA / "falco/test/trace_files/k8s_audit").glob("*.json")):
        sample += [x for x in path.read_text().splitlines() if x.strip()]
    lines: list[str] = []
    copy = 0
    while len(lines) < target:
        lines += [re.sub(r'("auditID": ?")([^"]+)', rf"\g<1>\g<2>-{copy}", x) for x in sample]
        copy += 1
    return lines, len(lines)


def app_lines(target: int) -> tuple[list[str], int]:
    """Application events of a few shapes (a login, an export, a config change)."""
    shapes = [
        {
            "schema": "keeptrail.event/v1",
            "time": "2024-03-01T10:00:00.123456Z",
            "category": "authentication",
            "action": "webapp.login",
            "outcome": "failure",
            "reason": "bad_password",
            "actor": {"name": "alice", "type": "user"},
            "source": {"ip": "203.0.113.9", "port": 51234},
            "target": {"system": "webapp"},
            "details": {"method": "password", "mfa": False},
        },
        {
            "schema": "keeptrail.event/v1",
            "id": "01900000-0000-7000-8000-000000000001",
            "time": "2024-03-01T11:00:00.250+01:00",
            "category": "api",
            "action": "billing.invoice_export",
            "outcome": "success",
            "actor": {"name": "bob", "uid": 1000, "type": "user", "session": "s-1"},
            "source": {"ip": "2001:db8::1"},
            "target": {"system": "billing", "resource": "invoice/42", "resource_type": "invoice"},
            "details": {"format": "csv", "rows": 1200, "tags": ["q1", "eu"]},
        },
        {
            "schema": "keeptrail.event/v1",
            "time": "2024-03-01T12:00:00Z",
            "category": "config",
            "action": "webapp.setting_change",
            "actor": {"name": "carol"},
            "details": {"setting": "sso.required", "old": "false", "new": "true"},
        },
    ]
    encoded = [orjson.dumps(s).decode() for s in shapes]
    lines = (encoded * (target // len(encoded) + 1))[:target]
    return lines, len(lines)


def journald_lines(target: int) -> tuple[list[str], int]:
    """journald export entries: Beats' samples plus sshd/sudo/PAM entries, replicated."""
    folder = DATA / "beats/filebeat/input/journald/pkg/journalctl/testdata"
    docs = [orjson.loads((folder / "sample-journal-event.json").read_bytes())]
    docs += orjson.loads((folder / "corner-cases.json").read_bytes())
    base = {k: v for k, v in docs[0].items() if k.startswith("_")}
    for ident, msg in (
        ("sshd", "Accepted publickey for alice from 192.0.2.9 port 50000 ssh2: ED25519 SHA256:x"),
        ("sshd", "Failed password for invalid user admin from 198.51.100.7 port 4242 ssh2"),
        (
            "sudo",
            "bob : TTY=pts/0 ; PWD=/home/bob ; USER=root ; COMMAND=/usr/bin/systemctl restart x",
        ),
        ("sudo", "pam_unix(sudo:session): session opened for user root(uid=0) by bob(uid=1000)"),
        ("systemd-logind", "New session 42 of user alice."),
    ):
        docs.append({**base, "SYSLOG_IDENTIFIER": ident, "MESSAGE": msg})
    encoded = [orjson.dumps(d).decode() for d in docs]
    lines = (encoded * (target // len(encoded) + 1))[:target]
    return lines, len(lines)


def measure(factory: Callable[[StreamContext], object], lines: list[str]) -> tuple[float, int]:
    """Seconds to feed every line and flush, and the number of events that came out."""
    asm = factory(StreamContext(reference_us=1_700_000_000_000_000))
    feed = asm.feed  # type: ignore[attr-defined]
    events = 0
    offset = 0
    start = time.perf_counter()
    for line in lines:
        events += len(feed(line, offset))
        offset += len(line) + 1
    events += len(asm.flush())  # type: ignore[attr-defined]
    return time.perf_counter() - start, events


def ausearch(path: Path) -> tuple[float, int] | None:
    """Wall seconds and event count of ``ausearch -i -if FILE`` (None when not installed)."""
    exe = shutil.which("ausearch") or (
        "/usr/sbin/ausearch" if Path("/usr/sbin/ausearch").exists() else None
    )
    if exe is None:
        return None
    start = time.perf_counter()
    proc = subprocess.run(
        [exe, "-i", "-if", str(path)], capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - start
    return elapsed, proc.stdout.count("\n----")


def main() -> None:
    """Print events/s per format."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    formats = [
        ("auditd", auditd.assembler, auditd_lines),
        ("k8s_audit", k8s_audit.assembler, k8s_lines),
        ("app_json", app_json.assembler, app_lines),
        ("journald", journald.assembler, journald_lines),
    ]
    print(f"python {sys.version.split()[0]}, one core, >= {args.events:,} events per format")
    print(f"{'format':<22}{'lines':>10}{'events':>10}{'seconds':>10}{'events/s':>12}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, factory, make in formats:
            lines, _ = make(args.events)
            path = Path(tmp) / f"{name}.log"
            path.write_text("\n".join(lines) + "\n")
            seconds, events = measure(factory, lines)
            print(
                f"{name:<22}{len(lines):>10,}{events:>10,}{seconds:>10.2f}{events / seconds:>12,.0f}"
            )
            if name == "auditd":
                peer = ausearch(path)
                if peer is None:
                    print(f"{'  ausearch -i -if':<22}  not installed (apt-get install auditd)")
                else:
                    secs, count = peer
                    print(
                        f"{'  ausearch -i -if':<22}{len(lines):>10,}{count:>10,}{secs:>10.2f}{count / secs:>12,.0f}"
                    )


if __name__ == "__main__":
    main()
