"""Generate a realistic auth.log (sshd, PAM, sudo, su, logind, shadow-utils) for benchmarks.

The mix follows what an Internet-facing fleet writes: mostly brute-force noise (invalid users,
failed passwords, preauth disconnects) from many sources, some real logins with their PAM and
logind sessions, sudo commands, a few su and account changes. Timestamps increase steadily
over ``--days`` so time-range searches have realistic selectivity.

    python bench/gen_auth_log.py --lines 1000000 --out bench/out/auth-1m.log
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
COMMANDS = (
    "/usr/bin/systemctl restart nginx",
    "/usr/bin/apt-get update",
    "/bin/cat /var/log/syslog",
    "/usr/bin/journalctl -u sshd --since today",
    "/usr/bin/docker ps -a",
    "/usr/bin/vim /etc/nginx/sites-available/default",
    "/usr/sbin/iptables -L -n",
)
BOT_NAMES = ("admin", "test", "oracle", "ubuntu", "postgres", "git", "user", "pi", "ftp", "guest")


def generate(lines: int, days: int, seed: int, out: Path) -> None:
    rnd = random.Random(seed)
    users = [f"user{i:04d}" for i in range(1000)]
    hosts = [f"web-{i:02d}" for i in range(50)]
    internal = [
        f"10.{rnd.randrange(256)}.{rnd.randrange(256)}.{rnd.randrange(1, 255)}" for _ in range(2000)
    ]
    external = [
        f"{rnd.randrange(1, 224)}.{rnd.randrange(256)}.{rnd.randrange(256)}.{rnd.randrange(1, 255)}"
        for _ in range(50000)
    ]
    start = time.time() - days * 86400
    step = days * 86400 * 2.4 / max(lines, 1)  # about 2.4 lines per scenario
    t = start
    written = 0
    pid = 1000
    with out.open("w") as f:
        buf: list[str] = []
        while written < lines:
            t += step * rnd.random() * 2
            tm = time.gmtime(t)
            stamp = f"{MONTHS[tm.tm_mon - 1]} {tm.tm_mday:2d} {tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d}"
            host = rnd.choice(hosts)
            pid += 1
            r = rnd.random()
            if r < 0.30:
                ip = rnd.choice(external)
                name = rnd.choice(BOT_NAMES)
                port = rnd.randrange(1024, 65535)
                buf.append(f"{stamp} {host} sshd[{pid}]: Invalid user {name} from {ip} port {port}")
                buf.append(
                    f"{stamp} {host} sshd[{pid}]: Failed password for invalid user {name} from {ip} port {port} ssh2"
                )
                buf.append(
                    f"{stamp} {host} sshd[{pid}]: Connection closed by invalid user {name} {ip} port {port} [preauth]"
                )
            elif r < 0.50:
                ip = rnd.choice(external)
                port = rnd.randrange(1024, 65535)
                buf.append(
                    f"{stamp} {host} sshd[{pid}]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={ip}  user=root"
                )
                buf.append(
                    f"{stamp} {host} sshd[{pid}]: Failed password for root from {ip} port {port} ssh2"
                )
            elif r < 0.70:
                user = rnd.choice(users)
                ip = rnd.choice(internal)
                port = rnd.randrange(1024, 65535)
                sess = rnd.randrange(1, 100000)
                if rnd.random() < 0.5:
                    buf.append(
                        f"{stamp} {host} sshd[{pid}]: Accepted publickey for {user} from {ip} port {port} ssh2: ED25519 SHA256:{rnd.getrandbits(256):064x}"[
                            :220
                        ]
                    )
                else:
                    buf.append(
                        f"{stamp} {host} sshd[{pid}]: Accepted password for {user} from {ip} port {port} ssh2"
                    )
                buf.append(
                    f"{stamp} {host} sshd[{pid}]: pam_unix(sshd:session): session opened for user {user}(uid={1000 + users.index(user)}) by (uid=0)"
                )
                buf.append(
                    f"{stamp} {host} systemd-logind[512]: New session {sess} of user {user}."
                )
            elif r < 0.88:
                user = rnd.choice(users)
                cmd = rnd.choice(COMMANDS)
                buf.append(
                    f"{stamp} {host} sudo: {user:>8} : TTY=pts/{rnd.randrange(10)} ; PWD=/home/{user} ; USER=root ; COMMAND={cmd}"
                )
                buf.append(
                    f"{stamp} {host} sudo: pam_unix(sudo:session): session opened for user root(uid=0) by {user}(uid={1000 + users.index(user)})"
                )
                buf.append(
                    f"{stamp} {host} sudo: pam_unix(sudo:session): session closed for user root"
                )
            elif r < 0.95:
                user = rnd.choice(users)
                ip = rnd.choice(internal)
                port = rnd.randrange(1024, 65535)
                buf.append(
                    f"{stamp} {host} sshd[{pid}]: Received disconnect from {ip} port {port}:11: disconnected by user"
                )
                buf.append(
                    f"{stamp} {host} sshd[{pid}]: Disconnected from user {user} {ip} port {port}"
                )
                buf.append(
                    f"{stamp} {host} sshd[{pid}]: pam_unix(sshd:session): session closed for user {user}"
                )
            elif r < 0.98:
                user = rnd.choice(users)
                buf.append(f"{stamp} {host} su[{pid}]: (to root) {user} on pts/{rnd.randrange(10)}")
                buf.append(
                    f"{stamp} {host} su[{pid}]: pam_unix(su:session): session opened for user root(uid=0) by {user}(uid={1000 + users.index(user)})"
                )
            elif r < 0.99:
                user = rnd.choice(users)
                buf.append(
                    f"{stamp} {host} sudo: {user:>8} : 3 incorrect password attempts ; TTY=pts/1 ; PWD=/home/{user} ; USER=root ; COMMAND=/bin/bash"
                )
            else:
                ip = rnd.choice(external)
                buf.append(
                    f"{stamp} {host} sshd[{pid}]: Did not receive identification string from {ip} port {rnd.randrange(1024, 65535)}"
                )
            if len(buf) >= 10000:
                take = buf[: lines - written]
                f.write("\n".join(take) + "\n")
                written += len(take)
                buf = []
        if buf and written < lines:
            take = buf[: lines - written]
            f.write("\n".join(take) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    generate(args.lines, args.days, args.seed, args.out)
    print(
        f"wrote {args.lines:,} lines ({args.out.stat().st_size / 1e6:.1f} MB) to {args.out} in {time.perf_counter() - began:.1f}s"
    )


if __name__ == "__main__":
    main()
