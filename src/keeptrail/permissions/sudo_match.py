"""Does a command that sudo logged fall under a sudoers command specification?

The findings ask whether a sudo rule was ever used: every ``sudo.command`` event carries the
command line exactly as sudo logged it (``details.command``, a full path and its arguments),
and the rule's scope is its command list as written in sudoers. This module answers with the
rules sudo itself applies (sudoers(5), "Command specification"), without a shell and without
the file system:

- ``ALL`` matches every command;
- ``/usr/bin/systemctl`` (no arguments) matches that command with any arguments;
- ``/usr/bin/systemctl restart nginx`` matches exactly those arguments, ``*`` and ``?`` being
  wildcards (fnmatch, as sudo does);
- ``/usr/bin/passwd ""`` matches the command with no arguments;
- ``/usr/sbin/`` (a trailing slash) matches any command directly in that directory;
- ``sudoedit FILE`` matches ``sudoedit`` runs on that file;
- a list is comma-separated; items starting with ``!`` are exclusions, the last item that
  matches a command decides (as in sudo), and tags (``NOPASSWD:``) and run-as lists
  (``(root)``) in front of an item are skipped.

Pure functions only: values in, values out.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import Final

_TAG: Final = re.compile(r"^(?:[A-Z_]+:\s*)+")
_RUNAS: Final = re.compile(r"^\([^)]*\)\s*")


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """One item of a sudoers command list."""

    text: str  # as written, without tags and run-as list
    negated: bool
    path: str  # "ALL", a path, a directory ending in "/", or "sudoedit"
    args: str | None  # None = any arguments; "" = none; else an fnmatch pattern


def parse_command_list(spec: str) -> tuple[CommandSpec, ...]:
    """The items of a comma-separated command list (``\\,`` is a literal comma)."""
    items = [part.replace("\\,", ",") for part in re.split(r"(?<!\\),", spec)]
    out: list[CommandSpec] = []
    for raw in items:
        text = _RUNAS.sub("", _TAG.sub("", raw.strip())).strip()
        text = _TAG.sub("", text).strip()
        if not text:
            continue
        negated = False
        while text.startswith("!"):
            negated = not negated
            text = text[1:].lstrip()
        path, _, rest = text.partition(" ")
        rest = rest.strip()
        if path == "ALL":
            args: str | None = None
        elif not rest:
            args = None
        elif rest == '""':
            args = ""
        else:
            args = rest
        out.append(CommandSpec(text=text, negated=negated, path=path, args=args))
    return tuple(out)


def item_matches(item: CommandSpec, command_line: str) -> bool:
    """Whether one (non-negated reading of an) item covers a logged command line."""
    if item.path == "ALL":
        return True
    path, _, args = command_line.strip().partition(" ")
    args = args.strip()
    if item.path == "sudoedit":
        return path in {"sudoedit", "/usr/bin/sudoedit"} and (
            item.args is None or fnmatch.fnmatchcase(args, item.args)
        )
    if item.path.endswith("/"):
        return path.startswith(item.path) and "/" not in path[len(item.path) :]
    if not fnmatch.fnmatchcase(path, item.path):
        return False
    if item.args is None:
        return True
    if item.args == "":
        return args == ""
    return fnmatch.fnmatchcase(args, item.args)


def list_matches(items: tuple[CommandSpec, ...], command_line: str) -> bool:
    """Whether a command list grants a command: the last item that covers it decides.

    That is sudo's own reading (the list is matched from its end), so ``ALL, !/usr/bin/su``
    grants everything except su.
    """
    for item in reversed(items):
        if item_matches(item, command_line):
            return not item.negated
    return False


def is_unrestricted(items: tuple[CommandSpec, ...]) -> bool:
    """Whether the list grants every command (``ALL`` without exclusions)."""
    return any(i.path == "ALL" and not i.negated for i in items) and not any(
        i.negated for i in items
    )
