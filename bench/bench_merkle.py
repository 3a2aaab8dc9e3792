"""Measure the ledger's Merkle hot paths at 1,000,000 leaves and print the figures.

Run: .venv/bin/python bench/bench_merkle.py [leaves]
"""

from __future__ import annotations

import hashlib
import random
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from keeptrail.ledger.merkle import Frontier, leaf_hash, root_from_leaf_hashes
from keeptrail.ledger.proof import (
    TreeNodes,
    consistency_proof,
    inclusion_proof,
    nodes_from_leaf_hashes,
    verify_inclusion,
)


def timed(label: str, n: int, fn: Callable[[], Any], repeat: int = 3) -> Any:
    """Run fn ``repeat`` times and report the best run: the box is shared, noise only adds."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    print(f"{label:<52} {best:8.3f} s  {n / best:>12,.0f} leaves/s")
    return result


def per_call(label: str, calls: list[tuple[Any, ...]], fn: Callable[..., object]) -> None:
    times = []
    for args in calls:
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    print(
        f"{label:<52} median {statistics.median(times) * 1e6:8.1f} µs"
        f"  max {max(times) * 1e6:8.1f} µs  ({len(calls)} calls)"
    )


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    rng = random.Random(42)
    data = [i.to_bytes(8, "big") * 16 for i in range(n)]  # 128-byte stand-ins for events
    print(f"Python {sys.version.split()[0]}, {n:,} leaves")

    hashes = timed("leaf_hash over 128-byte records", n, lambda: [leaf_hash(d) for d in data])
    sha256, block = hashlib.sha256, b"\x01" + bytes(64)
    timed("floor: bare sha256(65 bytes) n times", n, lambda: [sha256(block).digest() for _ in data])
    root = timed("root_from_leaf_hashes", n, lambda: root_from_leaf_hashes(hashes))

    def verify_all() -> bytes:
        sha256 = hashlib.sha256
        return root_from_leaf_hashes([sha256(b"\x00" + d).digest() for d in data])

    assert timed("verify: leaf hashes + root", n, verify_all) == root

    def grow() -> bytes:
        frontier = Frontier()
        frontier.extend(hashes)
        return frontier.root()

    assert timed("Frontier.extend + root", n, grow) == root
    tree = timed("TreeNodes build (every perfect subtree kept)", n, lambda: TreeNodes(hashes))

    indices = [(rng.randrange(n), n, tree) for _ in range(2000)]
    per_call("inclusion_proof, stored nodes", indices, inclusion_proof)
    olds = [(rng.randrange(1, n), n, tree) for _ in range(2000)]
    per_call("consistency_proof, stored nodes", olds, consistency_proof)
    proofs = [(hashes[i], i, n, inclusion_proof(i, n, tree), root) for i, _, _ in indices[:2000]]
    per_call("verify_inclusion", proofs, verify_inclusion)
    lazy = nodes_from_leaf_hashes(hashes)
    lazy_calls = [(i, s, lazy) for i, s, _ in indices[:3]]
    per_call("inclusion_proof, leaf hashes only (no nodes)", lazy_calls, inclusion_proof)


if __name__ == "__main__":
    main()
