"""How long findings take against a real store, and how fast review decisions are recorded.

Builds a data directory with H hosts of A accounts each (every account with a sudo rule, half
of them with `ALL`), E audit events spread over 120 days (ssh logins and sudo commands by a
random subset of accounts), then times:

- ``findings_for`` over every host (usage questions go through Store.search);
- a review campaign over the privileged entitlements, and D decisions (each one a ledger
  event appended to the store, then recorded in permissions.db).

Usage: .venv/bin/python bench/bench_permissions_findings.py [--hosts 5] [--accounts 100]
       [--events 200000] [--decisions 200]
Prints figures; asserts nothing. The machine is shared: compare runs, not absolutes.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from keeptrail.event import Event, uuid7
from keeptrail.permissions.findings import findings_for
from keeptrail.permissions.findings_config import FindingsConfig
from keeptrail.permissions.model import Account, Entitlement, Snapshot
from keeptrail.permissions.reviews import Actor, ReviewService
from keeptrail.permissions.reviews_store import open_reviews
from keeptrail.permissions.snapshots import open_snapshots
from keeptrail.store import open_store

DAY = 86_400_000_000
COMMANDS = ("/usr/bin/systemctl restart nginx", "/usr/bin/journalctl -u nginx", "/usr/bin/id")


def build(directory: Path, hosts: int, accounts: int, events: int) -> None:
    now = time.time_ns() // 1000
    rng = random.Random(7)
    with open_snapshots(directory) as snapshots:
        for h in range(hosts):
            system = f"linux:web-{h}"
            accs = tuple(
                Account(system, f"user{a}", "human", uid=1000 + a, shell="/bin/bash")
                for a in range(accounts)
            )
            rights = [
                Entitlement(
                    system,
                    f"user{a}",
                    "user",
                    "sudo",
                    "ALL" if a % 2 else COMMANDS[a % 3],
                    f"/etc/sudoers:{10 + a} (user{a})",
                    True,
                )
                for a in range(accounts)
            ]
            rights += [
                Entitlement(system, f"user{a}", "user", "login", "shell", "/etc/passwd", False)
                for a in range(accounts)
            ]
            snapshots.save(Snapshot(uuid7(), system, "linux", now - DAY, accs, tuple(rights)))
    store = open_store(directory)
    try:
        batch: list[Event] = []
        active = [a for a in range(accounts) if a % 4]  # a quarter never act
        for _ in range(events):
            h, a = rng.randrange(hosts), rng.choice(active)
            t = now - rng.randrange(120 * DAY)
            if rng.random() < 0.3:
                fields = {
                    "category": "authentication",
                    "action": "ssh.login",
                    "source_ip": f"10.0.{a % 250}.{rng.randrange(1, 4)}",
                    "target_system": "ssh",
                }
            else:
                fields = {
                    "category": "privilege",
                    "action": "sudo.command",
                    "target_system": "sudo",
                    "details": {"command": COMMANDS[rng.randrange(3)]},
                }
            batch.append(
                Event(
                    time=t,
                    outcome="success",
                    actor_name=f"user{a}",
                    target_host=f"web-{h}",
                    id=uuid7(),
                    ingested_at=now,
                    raw="bench",
                    **fields,
                )  # type: ignore[arg-type]
            )
            if len(batch) == 5000:
                store.append(batch)
                batch = []
        if batch:
            store.append(batch)
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=5)
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--decisions", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        started = time.perf_counter()
        build(directory, args.hosts, args.accounts, args.events)
        print(
            f"built {args.hosts} hosts x {args.accounts} accounts, {args.events} events "
            f"in {time.perf_counter() - started:.1f}s"
        )
        store = open_store(directory, readonly=True)
        calls = 0
        search = store.search

        def counted(*a: object, **k: object) -> object:
            nonlocal calls
            calls += 1
            return search(*a, **k)  # type: ignore[arg-type]

        store.search = counted  # type: ignore[method-assign]
        with open_snapshots(directory) as snapshots:
            started = time.perf_counter()
            found = findings_for(
                snapshots, store, config=FindingsConfig(), now=time.time_ns() // 1000
            )
            elapsed = time.perf_counter() - started
        store.close()
        kinds: dict[str, int] = {}
        for f in found:
            kinds[f.kind] = kinds.get(f.kind, 0) + 1
        principals = args.hosts * args.accounts
        print(
            f"findings: {len(found)} in {elapsed:.2f}s ({elapsed / principals * 1000:.1f} ms "
            f"per principal, {calls} store searches) {kinds}"
        )

        writer = open_store(directory)
        with open_reviews(directory) as reviews, open_snapshots(directory) as snapshots:
            service = ReviewService(reviews, writer.append, Actor("bench"))
            started = time.perf_counter()
            campaign, items = service.start(
                snapshots.latest_per_system(), scope="privileged:true", reviewers="bench"
            )
            print(
                f"campaign of {len(items)} items started in "
                f"{(time.perf_counter() - started) * 1000:.0f} ms"
            )
            n = min(args.decisions, len(items))
            started = time.perf_counter()
            for item in items[:n]:
                service.decide(campaign.id, str(item.number), "keep", "bench")
            elapsed = time.perf_counter() - started
            print(f"{n} decisions in {elapsed:.2f}s ({n / elapsed:.0f}/s, each a ledger event)")
        writer.close()


if __name__ == "__main__":
    main()
