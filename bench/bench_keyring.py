"""Measure the keyring: unwrap cost per provider, cached lookups, key creation and rotation.

Run: .venv/bin/python bench/bench_keyring.py [partitions]

Figures are best-of-3 on whatever machine runs this (a shared one, in CI and development); the
interesting numbers are the ratios: a ``kek_command`` unwrap costs a process spawn, which is why
the keyring caches unwrapped keys and a store pays it once per partition, never per event.
"""

from __future__ import annotations

import base64
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from keeptrail.protect.kek import context_for
from keeptrail.protect.keyring import Keyring, keyring_at

HELPER = Path(__file__).resolve().parent.parent / "tests" / "protect" / "kek_command.py"


def best(fn: Callable[[], object], repeat: int = 3) -> float:
    """Best wall time of ``repeat`` runs: on a shared box noise only adds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def report(label: str, seconds: float, n: int) -> None:
    per = seconds / n
    unit, scale = ("µs", 1e6) if per < 1e-3 else ("ms", 1e3)
    print(f"{label:<58} {per * scale:10.2f} {unit}/op  ({n:,} ops)")


def fresh(directory: Path, protect: dict[str, object], environ: dict[str, str]) -> Keyring:
    return keyring_at(directory, {"protect": protect}, create=True, environ=environ)


def bench_provider(name: str, protect: dict[str, object], environ: dict[str, str], n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        keyring = fresh(data, protect, environ)
        partitions = [f"p2024{1 + i // 28:02d}{1 + i % 28:02d}_default" for i in range(n)]
        report(
            f"[{name}] create data key (urandom + wrap + insert)",
            best(lambda: [keyring.data_key(f"{p}_{time.time_ns()}") for p in partitions], 1),
            n,
        )
        for p in partitions:
            keyring.data_key(p)
        keyring.close()
        provider = fresh(data, protect, environ).providers.get(name)
        wrapped = provider.wrap(1, os.urandom(32), context_for(partitions[0], 1))
        report(
            f"[{name}] unwrap one data key (provider only)",
            best(
                lambda: [
                    provider.unwrap(1, wrapped, context_for(partitions[0], 1)) for _ in range(n)
                ]
            ),
            n,
        )

        def cold() -> None:
            ring = fresh(data, protect, environ)
            for p in partitions:
                ring.existing_key(p)
            ring.close()

        report(f"[{name}] existing_key, cold cache (row + unwrap)", best(cold), n)
        warm = fresh(data, protect, environ)
        for p in partitions:
            warm.existing_key(p)
        lookups = partitions * (100_000 // n)
        report(
            f"[{name}] existing_key, cached",
            best(lambda: [warm.existing_key(p) for p in lookups]),
            len(lookups),
        )
        if name == "env":  # the documented procedure: old key numbered, new key current
            environ["KEEPTRAIL_MASTER_KEY_1"] = environ["KEEPTRAIL_MASTER_KEY"]
            environ["KEEPTRAIL_MASTER_KEY"] = base64.b64encode(os.urandom(32)).decode()
        started = time.perf_counter()
        result = warm.rotate()
        report(
            f"[{name}] rotate: re-wrap per data key ({result.rewrapped} keys)",
            time.perf_counter() - started,
            max(result.rewrapped, 1),
        )
        warm.close()


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    print(f"keyring micro-benchmark, {n} partitions (shared machine: compare ratios)")
    bench_provider("file", {}, {}, n)
    env = {"KEEPTRAIL_MASTER_KEY": base64.b64encode(os.urandom(32)).decode()}
    bench_provider("env", {"kek": "env"}, env, n)
    with tempfile.TemporaryDirectory() as kms:
        command = {"kek": "command", "kek_command": [sys.executable, str(HELPER), kms]}
        bench_provider("command", command, {}, max(n // 10, 10))


if __name__ == "__main__":
    main()
