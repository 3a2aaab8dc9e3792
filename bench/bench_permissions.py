"""How long a permission snapshot takes on a large host, and how long storing it takes.

Builds a fake root with N accounts (``--accounts``), one sudoers rule per 10 accounts spread
over ``sudoers.d`` files (aliases, groups, negations), two SSH keys per account, then times:
the Linux collector (built-in parser, and cvtsudoers when installed), saving the snapshot
(first_seen from history), saving a second snapshot on top of it, and loading it back.

    python bench/bench_permissions.py --accounts 5000
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from keeptrail.event import uuid7
from keeptrail.permissions.collectors.linux import collect_linux
from keeptrail.permissions.collectors.sudoers_cvt import cvtsudoers_path
from keeptrail.permissions.snapshots import open_snapshots


def build_root(root: Path, accounts: int) -> None:
    etc = root / "etc"
    (etc / "sudoers.d").mkdir(parents=True)
    passwd = ["root:x:0:0:root:/root:/bin/bash"]
    shadow = ["root:*:19000:0:99999:7:::"]
    groups: dict[str, list[str]] = {f"team{t}": [] for t in range(accounts // 50 + 1)}
    for i in range(accounts):
        name = f"user{i:05d}"
        passwd.append(f"{name}:x:{1000 + i}:{1000 + i}::/home/{name}:/bin/bash")
        shadow.append(f"{name}:$y$j9T$salt{i}$hash{i}:{19000 + i % 900}:0:90:7:::")
        groups[f"team{i // 50}"].append(name)
        ssh = root / "home" / name / ".ssh"
        ssh.mkdir(parents=True)
        keys = []
        for k in range(2):
            pub = hashlib.sha256(f"{i}-{k}".encode()).digest()
            blob = _string(b"ssh-ed25519") + _string(pub)
            keys.append(f"ssh-ed25519 {base64.b64encode(blob).decode()} {name}@host{k}")
        (ssh / "authorized_keys").write_text("\n".join(keys) + "\n")
    (etc / "passwd").write_text("\n".join(passwd) + "\n")
    (etc / "shadow").write_text("\n".join(shadow) + "\n")
    lines = [f"{g}:x:{5000 + n}:{','.join(m)}" for n, (g, m) in enumerate(groups.items())]
    (etc / "group").write_text("\n".join(["root:x:0:", *lines]) + "\n")
    (etc / "hostname").write_text("bench-1\n")
    (etc / "sudoers").write_text(
        "Defaults env_reset\nCmnd_Alias SHELLS = /bin/sh, /bin/bash\n"
        "root ALL=(ALL:ALL) ALL\n@includedir /etc/sudoers.d\n"
    )
    for f in range(accounts // 500 + 1):
        rules = []
        for r in range(50):
            n = f * 50 + r
            rules.append(f"User_Alias A{n} = user{n * 10:05d}, %team{n % len(groups)}, !user00001")
            rules.append(f"A{n} ALL = (root) NOPASSWD: /usr/bin/systemctl restart svc{n}, !SHELLS")
        (etc / "sudoers.d" / f"team{f:03d}").write_text("\n".join(rules) + "\n")


def _string(data: bytes) -> bytes:
    return len(data).to_bytes(4) + data


def timed(label: str, fn):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = fn()
    print(f"{label:<44} {time.perf_counter() - start:8.3f} s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=5000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kt-bench-perm-"))
    try:
        root = work / "root"
        timed(
            f"build fake root ({args.accounts} accounts)", lambda: build_root(root, args.accounts)
        )
        result = timed(
            "collect linux (built-in parser)", lambda: collect_linux(root, sudoers="parser")
        )
        snap = result.snapshot
        print(
            f"  {len(snap.accounts)} accounts, {len(snap.entitlements)} entitlements, "
            f"{sum(1 for e in snap.entitlements if e.privileged)} privileged"
        )
        if cvtsudoers_path():
            timed("collect linux (cvtsudoers)", lambda: collect_linux(root, sudoers="cvtsudoers"))
        store = open_snapshots(work / "data")
        timed("save snapshot (empty history)", lambda: store.save(snap))
        second = replace(snap, id=uuid7(), taken_at=snap.taken_at + 86_400_000_000)
        timed("save second snapshot (first_seen carried)", lambda: store.save(second))
        timed("load latest", lambda: store.latest(system=snap.system))
        store.close()
        size = (work / "data" / "permissions.db").stat().st_size
        print(f"permissions.db after two snapshots: {size / 1e6:.1f} MB")
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
