"""The ledger commands: ``verify``, ``prove``, ``verify-proof``, ``checkpoint``, ``keys public``.

Each opens the store (or nothing, for ``verify-proof``), calls one library function and
formats its result; docs/ledger.md describes what they check.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from keeptrail.cli.common import DataDir, StoreUrl, store_for
from keeptrail.cli.output import make_console, safe
from keeptrail.config import default_data_dir
from keeptrail.errors import UserError
from keeptrail.ledger.audit import ledger_event
from keeptrail.ledger.bundle import ProofError, check_bundle, consistency_bundle, inclusion_bundle
from keeptrail.ledger.keys import load_verifier
from keeptrail.ledger.note import NoteError, Verifier, parse_verifier_key
from keeptrail.ledger.publish import read_checkpoint_log
from keeptrail.ledger.verify import Report, verify_ledger
from keeptrail.store.contract import Store

keys_app = typer.Typer(
    help="The ledger's signing key and the encryption keys.", no_args_is_help=True
)


@keys_app.command("public")
def keys_public(data_dir: DataDir = None) -> None:
    """Print the verifier key that checks this store's checkpoints and proofs.

    Example: keeptrail keys public > keeptrail.vkey
    """
    typer.echo(load_verifier(data_dir or default_data_dir()).key)


def checkpoint(data_dir: DataDir = None) -> None:
    """Print the latest signed checkpoint (C2SP tlog-checkpoint in a signed note).

    Example: keeptrail checkpoint >> /mnt/elsewhere/keeptrail-checkpoints.log
    """
    store = store_for(data_dir, must_exist=True)
    try:
        latest = store.latest_checkpoint()
    finally:
        store.close()
    if latest is None:
        raise UserError("no checkpoint has been signed yet: ingest something first")
    sys.stdout.write(latest.note)


def prove(
    args: Annotated[list[str], typer.Argument(help="EVENT_ID, or OLD NEW with --consistency.")],
    consistency: Annotated[
        bool, typer.Option("--consistency", help="Prove tree size OLD is a prefix of NEW.")
    ] = False,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the bundle here, not stdout.")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Write a self-contained proof bundle (JSON) that verify-proof checks offline.

    Example: keeptrail prove 0190b7c2-5a1e-7000-8000-1234567890ab -o event.proof.json
    """
    store = store_for(data_dir, must_exist=True)
    try:
        if consistency:
            if len(args) != 2 or not all(a.isdigit() for a in args):
                raise UserError("--consistency takes two tree sizes: OLD NEW")
            bundle = consistency_bundle(store, int(args[0]), int(args[1]))
        else:
            if len(args) != 1:
                raise UserError("prove takes one event id (or --consistency OLD NEW)")
            bundle = inclusion_bundle(store, args[0])
    except ProofError as exc:
        raise UserError(str(exc)) from exc
    finally:
        store.close()
    text = orjson.dumps(bundle, option=orjson.OPT_INDENT_2).decode() + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text)


def verify_proof(
    file: Annotated[Path, typer.Argument(help="A bundle written by keeptrail prove.")],
    key: Annotated[str, typer.Option("--key", help="Verifier key string, or a file holding it.")],
) -> None:
    """Check a proof bundle with nothing but a verifier key you trust; exit 1 if it fails.

    Example: keeptrail verify-proof event.proof.json --key "$(cat keeptrail.vkey)"
    """
    verifier = _verifier(key)
    try:
        verdict = check_bundle(file.read_bytes(), verifier)
    except ProofError as exc:
        Console(stderr=True, highlight=False).print(f"FAILED: {safe(exc)}", markup=False)
        raise typer.Exit(1) from exc
    typer.echo(safe(verdict))


def verify(
    checkpoint_files: Annotated[
        list[Path] | None,
        typer.Option(
            "--checkpoint", help="A checkpoint, checkpoint log or directory kept elsewhere."
        ),
    ] = None,
    key: Annotated[
        str | None, typer.Option("--key", help="Expected verifier key [default: the store's].")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable report.")] = False,
    record: Annotated[
        bool, typer.Option(help="Store the result as a ledger.verified event.")
    ] = True,
    data_dir: DataDir = None,
    store_url: StoreUrl = None,
) -> None:
    """Recompute every leaf and check the tree against every signed checkpoint; exit 1 if damaged.

    Example: keeptrail verify --checkpoint /mnt/backup/keeptrail-checkpoints.log
    """
    directory = data_dir or default_data_dir()
    verifier = _verifier(key) if key else load_verifier(directory)
    external: list[tuple[str, str]] = []
    for given in checkpoint_files or []:
        paths = sorted(given.glob("*.checkpoint")) if given.is_dir() else [given]
        for path in paths:
            try:
                notes = read_checkpoint_log(path.read_text())
            except (ValueError, OSError) as exc:
                raise UserError(f"{path}: {exc}") from exc
            external.extend((str(path), note) for note in notes)
    store = store_for(directory, must_exist=True, store=store_url)
    try:
        report = _run(store, verifier, external)
        waiting = store.awaiting_reclaim()
        if record:
            _record(store, report)
    finally:
        store.close()
    if as_json:
        doc = {**report.to_json(), "awaiting_reclaim": waiting}
        typer.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
    else:
        _print_report(report)
        _print_awaiting_reclaim(waiting)
    if not report.ok:
        raise typer.Exit(1)


def _verifier(key: str) -> Verifier:
    text = key.strip()
    path = Path(text)
    if "+" not in text or (len(text) < 4096 and path.is_file()):
        try:
            text = path.read_text().strip()
        except OSError as exc:
            raise UserError(f"--key is neither a verifier key nor a readable file: {exc}") from exc
    try:
        return parse_verifier_key(text)
    except NoteError as exc:
        raise UserError(f"invalid verifier key: {exc}") from exc


def _run(store: Store, verifier: Verifier, external: list[tuple[str, str]]) -> Report:
    total = store.ledger_frontier().size
    with Progress(
        TextColumn("verifying"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not sys.stderr.isatty(),
        transient=True,
    ) as bar:
        task = bar.add_task("verify", total=total)
        return verify_ledger(
            store, verifier, external=external, progress=lambda n: bar.advance(task, n)
        )


def _record(store: Store, report: Report) -> None:
    first = report.first
    summary = (
        f"ledger verified: {report.size} events intact"
        if report.ok
        else f"ledger verification failed: {first.kind if first else '?'} "
        f"at leaf {first.leaf_index if first else '?'}"
    )
    details: dict[str, str | int | bool | list[str] | None] = {
        "size": report.size,
        "root": report.root.hex(),
        "findings": len(report.findings),
        "kind": first.kind if first else None,
        "leaf_index": first.leaf_index if first else None,
    }
    event = ledger_event("ledger.verified", "success" if report.ok else "failure", summary, details)
    try:
        store.append([event])
    except Exception as exc:  # a damaged store may refuse writes; the report still stands
        Console(stderr=True).print(f"warning: could not record the run: {safe(exc)}", markup=False)


def _print_report(report: Report) -> None:
    console = make_console()
    rate = f"{report.size / report.elapsed:,.0f} events/s" if report.elapsed else ""
    heads = f"{report.checkpoints_checked} stored and {report.external_checked} external"
    if report.ok:
        console.print(
            f"Ledger intact: {report.size} events, {heads} checkpoints verified, root "
            f"{report.root.hex()} ({report.elapsed:.2f}s, {rate})",
            markup=False,
        )
        _print_purged(console, report)
        return
    first = report.first
    assert first is not None
    where = f"leaf {first.leaf_index}" if first.leaf_index is not None else "the ledger"
    if not first.exact and first.range_end is not None:
        where = f"leaves {first.leaf_index}..{first.range_end - 1}"
    console.print(
        f"LEDGER DAMAGED — first affected: {where}"
        + (f", event {safe(first.event_id)}" if first.event_id else "")
        + f": {first.kind.upper()}",
        markup=False,
    )
    for f in report.findings[:20]:
        console.print(f"  {f.kind}: {safe(f.message)}", markup=False)
    if len(report.findings) > 20:
        console.print(f"  … and {len(report.findings) - 20} more", markup=False)
    _print_purged(console, report)
    console.print(f"Checked {report.size} events against {heads} checkpoints.", markup=False)


def _print_purged(console: Console, report: Report) -> None:
    """Leaves whose events a retention purge removed: not damage, but worth saying."""
    for p in report.purged:
        console.print(
            f"  purged by retention: {p.events} events of {safe(p.partition)} (leaves "
            f"{p.first}..{p.last}), purge event {safe(p.purge_event or '?')}",
            markup=False,
        )


def _print_awaiting_reclaim(names: list[str]) -> None:
    """Purged partitions whose pages are still on disk (keys gone): not damage, a chore."""
    if not names:
        return
    console = make_console()
    console.print(
        f"{len(names)} purged partition{'s' if len(names) != 1 else ''} await reclaim "
        f"(data keys destroyed, storage not freed yet): {', '.join(safe(n) for n in names)}",
        markup=False,
        soft_wrap=True,
    )
    console.print("  run `keeptrail retention reclaim` to free it", markup=False)
