"""Build the preset DEFLATE dictionary that stored events are compressed with (docs/storage.md).

The dictionary is the shipped samples (``src/keeptrail/samples/*.log``) ingested, as their
canonical events — the very bytes the store compresses — concatenated with the most common
shapes last (DEFLATE finds the nearest match cheapest) and cut to ``--size`` bytes.
``collector.file`` is set to the path the sample stands for (not a temporary path) and
``ingested_at`` to 1.5 s after ``time``, so the output depends only on the samples (and, for
the year-less ``auth.log``, on the year it is built in).

A dictionary version is forever: every row compressed with it needs the exact same bytes to be
read back. This script writes a *new* module (``--out``, a ``.py`` holding the bytes as base64 and
their SHA-256); committing it as ``src/keeptrail/store/zdict_v<N+1>.py`` with a new format
byte in :mod:`keeptrail.store.compact` is the only way to change it. Never overwrite a shipped
one (v1 was built with ``--size 32768``).

    python bench/build_zdict.py --out /tmp/zdict_new.py
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import hashlib
import tempfile
from collections import Counter
from pathlib import Path

from keeptrail.event import canonical_bytes
from keeptrail.ingest import Ingestor
from keeptrail.ledger.note import generate_signer
from keeptrail.ledger.publish import Publisher
from keeptrail.store.sqlite import SQLiteStore

SAMPLES = Path(__file__).resolve().parent.parent / "src" / "keeptrail" / "samples"
_STANDS_FOR = {"auth.log": "/var/log/auth.log", "secure-rfc3339.log": "/var/log/secure"}


def sample_events(samples: Path = SAMPLES) -> list[bytes]:
    """Canonical bytes of every event the shipped samples parse into."""
    out: list[bytes] = []
    with tempfile.TemporaryDirectory() as tmp:
        for log in sorted(samples.glob("*.log")):
            store = SQLiteStore(
                Path(tmp) / f"{log.stem}.db",
                signer=generate_signer("keeptrail/zdict/0"),
                publisher=Publisher(),
            )
            try:
                Ingestor(store, host="web-1").ingest_file(log)
                for _, event in store.events_after(0, 1_000_000):
                    fixed = dataclasses.replace(
                        event,
                        collector_file=_STANDS_FOR.get(log.name, f"/var/log/{log.name}"),
                        ingested_at=event.time + 1_500_000,  # deterministic, plausible
                    )
                    out.append(canonical_bytes(fixed))
            finally:
                store.close()
    return out


def build(events: list[bytes], size: int) -> bytes:
    """Events ordered rarest action first, most common last, cut to the last ``size`` bytes."""
    actions = Counter(_action(e) for e in events)
    ordered = sorted(events, key=lambda e: actions[_action(e)])
    blob = b"".join(ordered)
    return blob[-size:]


def _action(canonical: bytes) -> bytes:
    start = canonical.find(b'"action":"')
    return canonical[start : canonical.find(b'"', start + 10)] if start >= 0 else b""


def module_text(zdict: bytes, version: int) -> str:
    """The Python module that carries a dictionary (no package-data files to forget)."""
    text = base64.b64encode(zdict).decode()
    lines = "\n".join(f'    "{text[i : i + 88]}"' for i in range(0, len(text), 88))
    return (
        f'"""Preset DEFLATE dictionary v{version} for stored events: never change these bytes.\n\n'
        "Built by ``bench/build_zdict.py`` from the shipped samples' canonical events. Every row\n"
        f"compressed with format v{version} needs exactly these bytes to be read back; a better\n"
        "dictionary is a new version (docs/storage.md).\n"
        '"""\n\n'
        "from typing import Final\n\n"
        f'SHA256: Final = "{hashlib.sha256(zdict).hexdigest()}"\n\n'
        f"BASE64: Final = (\n{lines}\n)\n"
    )


def main() -> None:
    """Write the dictionary and print its size and the sample's compressed size per event."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--size", type=int, default=32 * 1024)
    parser.add_argument("--version", type=int, default=1)
    args = parser.parse_args()
    events = sample_events()
    zdict = build(events, args.size)
    args.out.write_text(module_text(zdict, args.version))
    print(f"{len(events)} sample events, {sum(map(len, events)) // len(events)} B each on average")
    print(f"wrote {len(zdict):,} B to {args.out}")


if __name__ == "__main__":
    main()
