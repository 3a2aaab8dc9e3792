"""``keeptrail rules import-sigma PATH``: convert Sigma rules, reporting every one refused.

Registered on :data:`keeptrail.cli.rules.rules_app`. Converted rules are written to ``--out``
(one ``<id>.yaml`` each, e.g. into ``<data-dir>/rules`` where the engine loads them) or printed
as YAML; the report goes to stderr. Exit status: 0 when every rule converted, 1 when some could
not be (the others are still written), 2 for bad input (no such path).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer

from keeptrail.cli.output import safe
from keeptrail.cli.rules import rules_app

if TYPE_CHECKING:
    from keeptrail.detect.sigma import ConversionReport


@rules_app.command("import-sigma")
def import_sigma(
    path: Annotated[Path, typer.Argument(help="A Sigma rule file or a directory of them.")],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write one <rule id>.yaml per rule here (else stdout)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The report as JSON on stdout.")] = False,
) -> None:
    """Convert Sigma rules (pySigma) into Keeptrail rules; say why each refused one was refused.

    Example: keeptrail rules import-sigma sigma/rules/linux --out ~/.local/share/keeptrail/rules

    Without --out the converted rules are printed as YAML; the report goes to stderr. Exit
    status 1 when some rules could not be converted (each is listed with the reason).
    """
    # pySigma is imported here, not at start-up: every other command stays fast
    from keeptrail.detect.sigma import convert_path, dump_rules, write_rules  # noqa: PLC0415

    report = convert_path(path)
    written = write_rules(report, out) if out is not None else []
    if as_json:
        typer.echo(orjson.dumps(_report_doc(report, written), option=orjson.OPT_INDENT_2).decode())
    else:
        if out is None and report.converted:
            sys.stdout.write(dump_rules([c.document for c in report.converted]))
        _print_report(report, written)
    raise typer.Exit(0 if report.ok else 1)


def _report_doc(report: ConversionReport, written: list[Path]) -> dict[str, object]:
    return {
        "converted": [
            {"id": c.rule_id, "title": c.title, "from": c.origin, "rule": c.document}
            for c in report.converted
        ],
        "failed": [{"from": f.origin, "title": f.title, "reason": f.reason} for f in report.failed],
        "used_by_correlations": report.skipped_referenced,
        "filters": report.filters,
        "written": [str(p) for p in written],
    }


def _print_report(report: ConversionReport, written: list[Path]) -> None:
    err = sys.stderr
    for item in report.converted:
        print(f"converted  {safe(item.origin)} -> {safe(item.rule_id)}", file=err)
    for origin in report.filters:
        print(f"filter     {safe(origin)} (applied to the rules it names)", file=err)
    for origin in report.skipped_referenced:
        print(f"used       {safe(origin)} (by a correlation rule; not written alone)", file=err)
    for failure in report.failed:
        title = f" ({safe(failure.title)})" if failure.title else ""
        print(f"FAILED     {safe(failure.origin)}{title}: {safe(failure.reason)}", file=err)
    where = f", written to {written[0].parent}" if written else ""
    print(
        f"{len(report.converted)} rule(s) converted{where}; {len(report.failed)} not converted",
        file=err,
    )
