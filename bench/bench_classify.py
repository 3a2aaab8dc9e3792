"""Measure RetentionPolicies.classify, which the store calls on every appended event.

Run: .venv/bin/python bench/bench_classify.py [events]

Events are built from the real mix of a parsed auth log (bench/gen_auth_log.py style actions)
plus database and Kubernetes actions; the figure to compare is ns per call against ingest's
per-event budget (a few microseconds).
"""

from __future__ import annotations

import sys
import time

from keeptrail.event import Event
from keeptrail.protect.retention import RetentionPolicies, make_policy

MIX = [
    ("authentication", "ssh.login", "file", "sshd"),
    ("session", "pam.session_open", "file", "pam"),
    ("privilege", "sudo.command", "file", "sudo"),
    ("database", "db.select", "file", "postgres"),
    ("database", "db.grant", "file", "postgres"),
    ("kubernetes", "k8s.get", "agent", "k8s_audit"),
    ("kubernetes", "k8s.create", "agent", "k8s_audit"),
    ("unparsed", "unparsed", "syslog", "unparsed"),
    ("audit", "ledger.verified", "ledger", None),
]


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    events = [
        Event(time=0, category=c, action=a, collector_source=s, collector_parser=p)
        for c, a, s, p in (MIX[i % len(MIX)] for i in range(n))
    ]
    policies = RetentionPolicies(
        [
            make_policy("pg_admin", 730, actions=["db.grant", "db.alter*"], sources=["postgres"]),
            make_policy("database", 90, categories=["database"]),
            make_policy("k8s_reads", 30, actions=["k8s.get", "k8s.list", "k8s.watch"]),
            make_policy("authentication", 400, categories=["authentication", "session"]),
            make_policy("unparsed", 30, categories=["unparsed"]),
        ],
        default_days=400,
    )
    classify = policies.classify
    best = float("inf")
    for _ in range(3):
        policies._cache.clear()
        start = time.perf_counter()
        for e in events:
            classify(e)
        best = min(best, time.perf_counter() - start)
    print(
        f"classify, 5 policies, {len(MIX)} distinct tuples, cached: {best / n * 1e9:6.0f} ns/event"
    )
    uncached = events[:20_000]
    start = time.perf_counter()
    for e in uncached:
        policies._cache.clear()
        classify(e)
    per = (time.perf_counter() - start) / len(uncached)
    print(f"classify, cache miss every call (worst case):          {per * 1e9:6.0f} ns/event")
    print(f"({n:,} events; best of 3; shared machine)")


if __name__ == "__main__":
    main()
