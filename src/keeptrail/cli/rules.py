"""``keeptrail rules``: list the active detection rules, validate a rule file, retro-hunt with it.

Each command loads rules through :mod:`keeptrail.detect.rules` (the same validation the engine
uses) and prints; ``test`` replays stored history through the rules in memory and stores
nothing. ``import-sigma`` is registered on :data:`rules_app` by :mod:`keeptrail.cli.sigma`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.table import Table
from rich.text import Text

from keeptrail.cli.common import DataDir, Since, Until, store_for, time_bounds
from keeptrail.cli.output import make_console, safe
from keeptrail.config import default_data_dir
from keeptrail.detect.alerts import Alert
from keeptrail.detect.rules import Rule, load_rule_set, load_rules_file, pack_dir
from keeptrail.detect.runtime import hunt, load_detect_config, open_geoip, site_rules
from keeptrail.event import format_time

rules_app = typer.Typer(help="Detection rules: list, validate, test.", no_args_is_help=True)

ConfigFile = Annotated[
    Path | None,
    typer.Option("--config", "-c", envvar="KEEPTRAIL_CONFIG", help="keeptrail.toml to read."),
]
AsJson = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _origin(rule: Rule) -> str:
    return "pack" if Path(rule.source).parent == pack_dir() else rule.source


@rules_app.command("list")
def list_rules(
    as_json: AsJson = False, config: ConfigFile = None, data_dir: DataDir = None
) -> None:
    """List the rules the engine runs: the shipped pack, <data-dir>/rules and [detect] rules_dirs.

    Example: keeptrail rules list
    """
    directory = data_dir or default_data_dir()
    cfg = load_detect_config(directory, config)
    rules = site_rules(directory, cfg)
    if as_json:
        rows = [
            {
                "id": r.id,
                "title": r.title,
                "severity": r.severity,
                "kind": r.kind,
                "tags": list(r.tags),
                "match": r.match,
                "source": _origin(r),
                "enabled": r.enabled,
            }
            for r in rules
        ]
        typer.echo(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
        return
    table = Table(header_style="bold", title=f"{len(rules)} rules", title_justify="left")
    for column in ("id", "severity", "kind", "title", "tags", "from"):
        table.add_column(column, overflow="fold")
    for r in rules:
        cells = (r.id, r.severity, r.kind, r.title, " ".join(r.tags), _origin(r))
        table.add_row(*(Text(safe(c)) for c in cells), style="" if r.enabled else "dim")
    console = make_console()
    console.print(table)
    if not cfg.enabled:
        console.print("note: [detect] enabled = false: the engine does not run", markup=False)


@rules_app.command("validate")
def validate(
    files: Annotated[list[Path], typer.Argument(help="Rule files (YAML).")],
    data_dir: DataDir = None,
) -> None:
    """Check rule files: every field, every query; the first problem is named with its rule.

    Example: keeptrail rules validate /etc/keeptrail/rules/site.yaml
    """
    pack_ids = {r.id for r in load_rule_set([], include_pack=True)}
    for path in files:
        rules = load_rules_file(path)
        clash = sorted(r.id for r in rules if r.id in pack_ids)
        typer.echo(f"{safe(path)}: {len(rules)} rule(s) valid: {', '.join(r.id for r in rules)}")
        if clash and Path(path).resolve().parent != pack_dir().resolve():
            typer.echo(
                f"warning: {', '.join(clash)} already exist in the shipped pack; loading both "
                "will fail (give your rule another id)",
                err=True,
            )


@rules_app.command("test")
def retro_hunt(
    file: Annotated[Path, typer.Argument(help="Rule file (YAML) to replay history through.")],
    since: Since = "7d",
    until: Until = None,
    limit: Annotated[int, typer.Option(help="Alerts to show.")] = 20,
    as_json: AsJson = False,
    config: ConfigFile = None,
    data_dir: DataDir = None,
) -> None:
    """Retro-hunt: replay stored events through the rules and show what they would raise.

    Nothing is stored: no alert, no state. Example: keeptrail rules test my.yaml --since 30d
    """
    rules = load_rules_file(file)
    directory = data_dir or default_data_dir()
    lo, hi = time_bounds(since, until)
    geo = open_geoip(load_detect_config(directory, config))
    store = store_for(data_dir, must_exist=True)
    try:
        result = hunt(store, rules, since=lo, until=hi, geo=geo)
    finally:
        store.close()
        if geo is not None:
            geo.close()
    shown = result.alerts[-limit:] if limit > 0 else []
    if as_json:
        doc = {
            "scanned": result.scanned,
            "truncated": result.truncated,
            "alerts": len(result.alerts),
            "shown": [a.to_dict() for a in shown],
        }
        typer.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
        return
    console = make_console()
    for alert in shown:
        console.print(_alert_text(alert), markup=False)
    more = f" (showing the last {len(shown)})" if len(shown) < len(result.alerts) else ""
    cut = "; stopped at the scan limit, narrow --since" if result.truncated else ""
    console.print(
        f"{len(result.alerts)} alert(s) from {result.scanned} matching event(s){more}{cut}; "
        "nothing was stored",
        markup=False,
    )


def _alert_text(alert: Alert) -> str:
    key = ", ".join(f"{k}={v}" for k, v in alert.key.items()) or "-"
    lines = [
        f"[{alert.severity}] {alert.rule_id}: {alert.title}",
        f"  key: {key}",
        f"  {format_time(alert.first_time)[:19]} .. {format_time(alert.last_time)[:19]} UTC, "
        f"{alert.count} event(s)",
        f"  why: {alert.reason}",
    ]
    for ev in alert.evidence[:5]:
        lines.append(f"  - {format_time(ev.time)[:19]} {ev.event_id} {ev.summary}")
    if len(alert.evidence) > 5:
        lines.append(f"  ... {len(alert.evidence) - 5} more evidence event(s)")
    return "\n".join(safe(line) for line in lines)
