"""A parser for sudoers(5): aliases, user specifications, tags and includes — pure, no I/O.

sudo's own ``cvtsudoers -f json`` is the reference when installed (see ``sudoers_cvt``), but
hosts without it must be audited too, and only a parser that reads the text knows which line a
rule came from — the evidence an auditor follows. So this parser always runs, and it produces
exactly the vocabulary of ``cvtsudoers -f json`` (``username``, ``usergroup``, ``userid``,
``useralias``, ``command``, ``cmndalias``, ...) so the two can be compared item for item.

Covered: ``User_Alias``/``Runas_Alias``/``Host_Alias``/``Cmnd_Alias`` (several per line with
``:``), ``ALL``, ``!`` negation (repeatable), ``%group``, ``%:group``, ``%#gid``, ``#uid``,
``+netgroup``, runas ``(users:groups)``, tags (``NOPASSWD:``, ``PASSWD:``, ``NOEXEC:``, ...)
carried over to the following commands, options (``CWD=``, ``TIMEOUT=``, ...), digests
(``sha256:...``), ``: host = ...`` continuations of a rule, ``Defaults[:@>!]`` (only
``authenticate`` is kept: ``!authenticate`` means no password), ``@include``/``@includedir``
and their ``#`` forms, backslash line continuations, escapes and comments.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

__all__ = [
    "CmndSpec",
    "Defaults",
    "Include",
    "Item",
    "SudoersFile",
    "SudoersSyntaxError",
    "UserSpec",
    "parse_sudoers",
]

OptionValue = bool | str | int

TAGS: Final = {
    "NOPASSWD": ("authenticate", False),
    "PASSWD": ("authenticate", True),
    "NOEXEC": ("noexec", True),
    "EXEC": ("noexec", False),
    "SETENV": ("setenv", True),
    "NOSETENV": ("setenv", False),
    "LOG_INPUT": ("log_input", True),
    "NOLOG_INPUT": ("log_input", False),
    "LOG_OUTPUT": ("log_output", True),
    "NOLOG_OUTPUT": ("log_output", False),
    "MAIL": ("send_mail", True),
    "NOMAIL": ("send_mail", False),
    "FOLLOW": ("sudoedit_follow", True),
    "NOFOLLOW": ("sudoedit_follow", False),
    "INTERCEPT": ("intercept", True),
    "NOINTERCEPT": ("intercept", False),
}
OPTIONS: Final = {
    "ROLE": "role",
    "TYPE": "type",
    "APPARMOR_PROFILE": "apparmor_profile",
    "CHROOT": "runchroot",
    "CWD": "runcwd",
    "NOTBEFORE": "notbefore",
    "NOTAFTER": "notafter",
    "TIMEOUT": "command_timeout",
}
ALIAS_KINDS: Final = {
    "User_Alias": "user",
    "Runas_Alias": "runas",
    "Host_Alias": "host",
    "Cmnd_Alias": "cmnd",
    "Cmd_Alias": "cmnd",
}
_ALIAS_NAME: Final = re.compile(r"[A-Z][A-Z0-9_]*\Z")
_DIGEST: Final = re.compile(r"(sha224|sha256|sha384|sha512):(\S+)\s+")
_WORD_END: Final = frozenset(" \t,:=()!")


class SudoersSyntaxError(ValueError):
    """A line the parser cannot read; names the file and line (never the whole text)."""


@dataclass(slots=True, frozen=True)
class Item:
    """One member of a list: a user, group, host, command or alias, possibly negated."""

    kind: str
    value: str
    negated: bool = False
    digest: str | None = None  # "sha256:..." for commands pinned to a checksum


@dataclass(slots=True, frozen=True)
class CmndSpec:
    """One command with the runas list, tags and options in force for it."""

    runasusers: tuple[Item, ...] | None
    runasgroups: tuple[Item, ...] | None
    options: Mapping[str, OptionValue]
    command: Item


@dataclass(slots=True, frozen=True)
class UserSpec:
    """``users hosts = commands`` (one per ``: hosts =`` part), with the file and line."""

    users: tuple[Item, ...]
    hosts: tuple[Item, ...]
    commands: tuple[CmndSpec, ...]
    origin: str


@dataclass(slots=True, frozen=True)
class Defaults:
    """A ``Defaults`` line reduced to what matters for rights: is authentication required."""

    binding: str  # "" (global), ":" users, "@" hosts, ">" runas, "!" commands
    targets: tuple[Item, ...]
    authenticate: bool
    origin: str


@dataclass(slots=True, frozen=True)
class Include:
    """An ``@include``/``@includedir`` directive, its path as written."""

    path: str
    directory: bool
    origin: str


@dataclass(slots=True)
class SudoersFile:
    """What one file holds, in order."""

    aliases: dict[str, dict[str, tuple[Item, ...]]] = field(
        default_factory=lambda: {"user": {}, "runas": {}, "host": {}, "cmnd": {}}
    )
    specs: list[UserSpec] = field(default_factory=list)
    defaults: list[Defaults] = field(default_factory=list)
    includes: list[Include] = field(default_factory=list)


def logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, text) of each statement: continuations joined, comments removed."""
    out: list[tuple[int, str]] = []
    pending = ""
    start = 0
    for number, line in enumerate(text.splitlines(), 1):
        if not pending:
            start = number
        if line.endswith("\\") and not line.endswith("\\\\"):
            pending += line[:-1] + " "
            continue
        statement = _strip_comment(pending + line).strip()
        pending = ""
        if statement:
            out.append((start, statement))
    if pending.strip():
        out.append((start, _strip_comment(pending).strip()))
    return out


def _strip_comment(line: str) -> str:
    stripped = line.lstrip()
    if re.match(r"#include(dir)?\s", stripped):
        return line
    i = 0
    while i < len(line):
        c = line[i]
        if c == "\\":
            i += 2
            continue
        if c == "#" and (i == 0 or line[i - 1] in " \t,=:(!"):
            nxt = line[i + 1 : i + 2]
            if not nxt.isdigit():  # "#1000" is a uid, anything else starts a comment
                return line[:i]
        i += 1
    return line


def parse_sudoers(text: str, path: str) -> SudoersFile:
    """Parse one file's text; ``path`` is only used for origins and error messages."""
    result = SudoersFile()
    for number, statement in logical_lines(text):
        origin = f"{path}:{number}"
        try:
            _statement(statement, origin, result)
        except (IndexError, _Stop) as exc:
            raise SudoersSyntaxError(f"{origin}: cannot parse this statement") from exc
    return result


class _Stop(Exception):
    """The cursor hit something the grammar does not allow here."""


def _statement(s: str, origin: str, out: SudoersFile) -> None:
    m = re.match(r"[@#](include|includedir)\s+(.+)", s)
    if m:
        out.includes.append(
            Include(_unquote(m.group(2).strip()), m.group(1) == "includedir", origin)
        )
        return
    word = re.match(r"[A-Za-z_]+", s)
    head = word.group() if word else ""
    if head in ALIAS_KINDS:
        _aliases(_Cursor(s, len(head)), ALIAS_KINDS[head], out)
        return
    if head == "Defaults":
        out.defaults.extend(_defaults(s, origin))
        return
    cur = _Cursor(s)
    users = cur.items("user", stop="")
    while True:
        cur.ws()
        hosts = cur.items("host", stop="=")
        cur.expect("=")
        commands = _cmnd_list(cur)
        out.specs.append(UserSpec(users, hosts, commands, origin))
        cur.ws()
        if cur.at_end():
            return
        cur.expect(":")


def _aliases(cur: _Cursor, kind: str, out: SudoersFile) -> None:
    while True:
        cur.ws()
        name = cur.word()
        if not _ALIAS_NAME.match(name):
            raise _Stop
        cur.ws()
        cur.expect("=")
        if kind == "cmnd":
            items = tuple(c.command for c in _cmnd_list(cur, bare=True))
        else:
            items = cur.items(kind, stop=":")
        out.aliases[kind][name] = items
        cur.ws()
        if cur.at_end():
            return
        cur.expect(":")


def _defaults(s: str, origin: str) -> list[Defaults]:
    m = re.match(r"Defaults([:@>!])?", s)
    assert m is not None
    binding = m.group(1) or ""
    cur = _Cursor(s, m.end())
    targets: tuple[Item, ...] = ()
    if binding:
        kind = {":": "user", "@": "host", ">": "runas", "!": "cmnd"}[binding]
        targets = cur.items(kind, stop="") if kind != "cmnd" else (cur.command(),)
    rest = s[cur.pos :]
    found = []
    for option in re.split(r"\s*,\s*|\s+", rest.strip()):
        name = option.lstrip("!")
        if name == "authenticate":
            negations = len(option) - len(name)
            found.append(Defaults(binding, targets, negations % 2 == 0, origin))
    return found


def _cmnd_list(cur: _Cursor, *, bare: bool = False) -> tuple[CmndSpec, ...]:
    """Commands separated by ``,``; runas, options and tags carry over until changed."""
    specs: list[CmndSpec] = []
    runasusers: tuple[Item, ...] | None = None
    runasgroups: tuple[Item, ...] | None = None
    options: dict[str, OptionValue] = {}
    while True:
        cur.ws()
        if not bare and cur.peek() == "(":
            cur.pos += 1
            cur.ws()
            runasusers = cur.items("runas", stop=":)") if cur.peek() not in ":)" else None
            runasgroups = None
            cur.ws()
            if cur.peek() == ":":
                cur.pos += 1
                cur.ws()
                runasgroups = cur.items("runasgroup", stop=")") if cur.peek() != ")" else None
            cur.ws()
            cur.expect(")")
            if runasusers is None and runasgroups is None:
                runasusers = ()
            options = {k: v for k, v in options.items() if k not in OPTIONS.values()}
        while not bare:
            cur.ws()
            m = re.compile(r"([A-Z_]+)=(\"[^\"]*\"|\S+?)(?=[\s,]|$)").match(cur.text, cur.pos)
            if m and m.group(1) in OPTIONS:
                value: OptionValue = _unquote(m.group(2))
                if m.group(1) == "TIMEOUT" and str(value).isascii() and str(value).isdigit():
                    value = int(value)
                options[OPTIONS[m.group(1)]] = value
                cur.pos = m.end()
                continue
            t = re.compile(r"([A-Z_]+)\s*:").match(cur.text, cur.pos)
            if t and t.group(1) in TAGS:
                key, flag = TAGS[t.group(1)]
                options[key] = flag
                cur.pos = t.end()
                continue
            break
        cur.ws()
        specs.append(CmndSpec(runasusers, runasgroups, dict(options), cur.command()))
        cur.ws()
        if cur.peek() != ",":
            return tuple(specs)
        cur.pos += 1


class _Cursor:
    """A position in a statement, with the small lexers the grammar needs."""

    def __init__(self, text: str, pos: int = 0) -> None:
        self.text = text
        self.pos = pos

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos : self.pos + 1]

    def ws(self) -> None:
        while self.peek() in (" ", "\t") and not self.at_end():
            self.pos += 1

    def expect(self, char: str) -> None:
        if self.peek() != char:
            raise _Stop
        self.pos += 1

    def word(self) -> str:
        """A name: up to whitespace or punctuation; ``"quoted"`` names and ``\\`` escapes."""
        if self.peek() == '"':
            end = self.text.index('"', self.pos + 1)
            value = self.text[self.pos + 1 : end]
            self.pos = end + 1
            return value
        chars: list[str] = []
        if self.text.startswith("%:", self.pos):  # a non-Unix group: the colon is its sigil
            chars.extend("%:")
            self.pos += 2
        while not self.at_end():
            c = self.text[self.pos]
            if c == "\\" and self.pos + 1 < len(self.text):
                chars.append(self.text[self.pos + 1])
                self.pos += 2
                continue
            if c in _WORD_END:
                break
            chars.append(c)
            self.pos += 1
        if not chars or chars == ["%", ":"]:
            raise _Stop
        return "".join(chars)

    def items(self, kind: str, *, stop: str) -> tuple[Item, ...]:
        """A comma-separated list; it ends at whitespace not followed by ``,`` or at ``stop``."""
        found: list[Item] = []
        while True:
            self.ws()
            negations = 0
            while self.peek() == "!":
                negations += 1
                self.pos += 1
                self.ws()
            found.append(_classify(kind, self.word(), negations % 2 == 1))
            save = self.pos
            self.ws()
            if self.peek() == ",":
                self.pos += 1
                continue
            if stop and (self.peek() in stop or self.at_end()):
                return tuple(found)
            self.pos = save
            return tuple(found)

    def command(self) -> Item:
        """``[!]* (ALL | ALIAS | [digest] path [args])`` up to an unescaped ``,`` or ``:``."""
        negations = 0
        while self.peek() == "!":
            negations += 1
            self.pos += 1
            self.ws()
        negated = negations % 2 == 1
        digest = None
        m = _DIGEST.match(self.text, self.pos)
        if m:
            digest = f"{m.group(1)}:{m.group(2)}"
            self.pos = m.end()
        start = self.pos
        chars: list[str] = []
        while not self.at_end():
            c = self.text[self.pos]
            if c == "\\" and self.pos + 1 < len(self.text):
                nxt = self.text[self.pos + 1]
                chars.append(nxt if nxt in ",:=\\" else "\\" + nxt)  # as sudo unescapes
                self.pos += 2
                continue
            if c in ",:":
                break
            chars.append(c)
            self.pos += 1
        text = " ".join("".join(chars).split())
        if not text or start == self.pos:
            raise _Stop
        if text == "ALL" or _ALIAS_NAME.match(text):
            kind = "command" if text == "ALL" else "cmndalias"
            return Item(kind, text, negated, digest)
        return Item("command", text, negated, digest)


def _classify(kind: str, word: str, negated: bool) -> Item:
    """Map a list word to cvtsudoers' item kind for this list type."""
    if word == "ALL":
        base = {"user": "username", "runas": "username", "runasgroup": "usergroup"}
        return Item(base.get(kind, "hostname"), word, negated)
    if _ALIAS_NAME.match(word):
        alias = {"user": "useralias", "runas": "runasalias", "runasgroup": "runasalias"}
        return Item(alias.get(kind, "hostalias"), word, negated)
    if kind == "host":
        if re.match(r"[0-9a-fA-F:.]+(/[0-9.]+)?\Z", word) and any(c in word for c in ".:"):
            return Item("networkaddr", word, negated)
        if word.startswith("+"):
            return Item("netgroup", word[1:], negated)
        return Item("hostname", word, negated)
    if kind == "runasgroup":
        if word.startswith("#"):
            return Item("usergid", word[1:], negated)
        return Item("usergroup", word, negated)
    if word.startswith("%:"):
        return Item("nonunixgroup", word[2:], negated)
    if word.startswith("%#"):
        return Item("usergid", word[2:], negated)
    if word.startswith("%"):
        return Item("usergroup", word[1:], negated)
    if word.startswith("#"):
        return Item("userid", word[1:], negated)
    if word.startswith("+"):
        return Item("netgroup", word[1:], negated)
    return Item("username", word, negated)


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value
