"""Reading sudoers through sudo's own ``cvtsudoers -f json``, into the parser's types.

When the sudo package is installed, its parser is the authority on what a file means; this
module runs it on one file's text (include directives blanked out, so it never reads files
outside the collector's root) and maps its JSON onto :mod:`sudoers` types. ``cvtsudoers`` does
not say which line a rule came from, so the origins are taken, in order, from the parser's
reading of the same text; if the two disagree on the number of rules, or cvtsudoers fails or
prints invalid JSON (sudo 1.9.13 does for ``CWD=``), the caller falls back to the parser.
``Defaults`` always come from the parser: the JSON does not tell ``Defaults:root`` (a user)
from ``Defaults>root`` (a runas target).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence
from typing import Any, Final

import orjson

from keeptrail.permissions.collectors.sudoers import (
    TAGS,
    CmndSpec,
    Item,
    SudoersFile,
    UserSpec,
)

__all__ = ["CvtsudoersFailed", "cvtsudoers_path", "parse_with_cvtsudoers"]

_KNOWN_OPTIONS: Final = {key for key, _ in TAGS.values()} | {
    "role",
    "type",
    "apparmor_profile",
    "runchroot",
    "runcwd",
    "notbefore",
    "notafter",
    "command_timeout",
}
_DIGESTS: Final = ("sha224", "sha256", "sha384", "sha512")
_INCLUDE: Final = re.compile(r"^\s*[@#]include(dir)?\s.*$", re.MULTILINE)


class CvtsudoersFailed(Exception):
    """cvtsudoers could not be used for this file; the message says why (no file text)."""


def cvtsudoers_path() -> str | None:
    """The cvtsudoers binary on $PATH, or None."""
    return shutil.which("cvtsudoers")


def parse_with_cvtsudoers(
    text: str, path: str, origins: Sequence[str], *, binary: str = "cvtsudoers"
) -> SudoersFile:
    """One file through cvtsudoers; ``origins`` are the parser's ``path:line`` of each rule."""
    blanked = _INCLUDE.sub("", text)
    try:
        done = subprocess.run(  # noqa: S603 — fixed argv, the text goes through stdin
            [binary, "-f", "json", "-d", "all", "-"],
            input=blanked.encode(),
            capture_output=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CvtsudoersFailed(f"{path}: cannot run cvtsudoers: {exc}") from exc
    if done.returncode != 0:
        raise CvtsudoersFailed(f"{path}: cvtsudoers exited with status {done.returncode}")
    if not done.stdout.strip():  # nothing but comments and blank lines
        return SudoersFile()
    try:
        data = orjson.loads(done.stdout)
    except orjson.JSONDecodeError as exc:
        raise CvtsudoersFailed(f"{path}: cvtsudoers printed invalid JSON ({exc})") from exc
    return _from_json(data, path, origins)


def _from_json(data: dict[str, Any], path: str, origins: Sequence[str]) -> SudoersFile:
    out = SudoersFile()
    for section, kind in (
        ("User_Aliases", "user"),
        ("Runas_Aliases", "runas"),
        ("Host_Aliases", "host"),
        ("Command_Aliases", "cmnd"),
    ):
        for name, members in data.get(section, {}).items():
            out.aliases[kind][name] = tuple(_item(m) for m in members)
    flat: list[dict[str, Any]] = list(data.get("User_Specs", []))
    if len(flat) != len(origins):
        raise CvtsudoersFailed(
            f"{path}: cvtsudoers found {len(flat)} rules where the parser found {len(origins)}"
        )
    for spec, origin in zip(flat, origins, strict=True):
        commands: list[CmndSpec] = []
        for cs in spec.get("Cmnd_Specs", []):
            users = cs.get("runasusers")
            groups = cs.get("runasgroups")
            options: dict[str, bool | str | int] = {}
            for option in cs.get("Options", []):
                if isinstance(option, dict):
                    options.update({k: v for k, v in option.items() if k in _KNOWN_OPTIONS})
            for command in cs.get("Commands", []):
                commands.append(
                    CmndSpec(
                        tuple(_item(u) for u in users) if users is not None else None,
                        tuple(_item(g) for g in groups) if groups is not None else None,
                        options,
                        _item(command),
                    )
                )
        out.specs.append(
            UserSpec(
                tuple(_item(u) for u in spec.get("User_List", [])),
                tuple(_item(h) for h in spec.get("Host_List", [])),
                tuple(commands),
                origin,
            )
        )
    return out


def _item(member: dict[str, Any]) -> Item:
    negated = bool(member.get("negated", False))
    digest = None
    for algo in _DIGESTS:
        if algo in member:
            digest = f"{algo}:{member[algo]}"
    for kind, value in member.items():
        if kind not in ("negated", *_DIGESTS):
            return Item(kind, str(value), negated, digest)
    return Item("unknown", "", negated, digest)
