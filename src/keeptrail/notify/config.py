"""The ``[notify]`` table of keeptrail.toml, validated here and nowhere else.

::

    [notify]
    min_severity = "medium"        # alerts below this are not delivered (default: low = all)
    on_update = false              # also deliver when an open alert grows (default: new only)
    max_attempts = 8               # then the delivery is failed: metric + alert.delivery_failed
    backoff = "2s"                 # first retry delay, doubled each time ...
    max_backoff = "10m"            # ... up to this

    [[notify.webhook]]
    name = "soc"
    url = "https://hooks.example.org/keeptrail"
    secret = "$file:/etc/keeptrail/webhook.key"    # or "$env:KEEPTRAIL_WEBHOOK_SECRET"
    timeout = "5s"
    ca_file = "/etc/keeptrail/hooks-ca.pem"        # optional: a private CA for the receiver

    [[notify.apprise]]             # chat and email: https://github.com/caronc/apprise/wiki
    name = "chat"
    urls = ["$env:KEEPTRAIL_SLACK_URL", "mailtos://user:pass@mail.example.org"]

    [[notify.syslog]]              # RFC 5424 frames carrying CEF:0, to a SIEM
    name = "siem"
    address = "siem.example.org:514"
    protocol = "tcp"               # or "udp"

Every sink may set its own ``min_severity``. Secrets are references — ``$env:NAME`` or
``$file:/path`` (the file must not be readable by group or others) — so the configuration
file can be shared without them; apprise URLs may be either, since many carry a token. Plain
``http://`` webhooks are refused beyond loopback unless the sink says ``insecure_http = true``.
"""

from __future__ import annotations

import ipaddress
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from keeptrail.errors import UserError
from keeptrail.query.timerange import parse_duration

SEVERITY_ORDER: Final = ("info", "low", "medium", "high", "critical")
_TOP: Final = frozenset(
    {
        "min_severity",
        "on_update",
        "max_attempts",
        "backoff",
        "max_backoff",
        "webhook",
        "apprise",
        "syslog",
    }
)
_WEBHOOK: Final = frozenset(
    {"name", "url", "secret", "timeout", "min_severity", "insecure_http", "ca_file"}
)
_APPRISE: Final = frozenset({"name", "urls", "min_severity"})
_SYSLOG: Final = frozenset({"name", "address", "protocol", "min_severity", "hostname", "timeout"})


@dataclass(frozen=True, slots=True)
class WebhookSink:
    name: str
    url: str
    secret: bytes = field(repr=False)
    timeout: float = 5.0
    min_severity: str | None = None
    ca_file: Path | None = None  # verify the receiver with this CA [default: system CAs]
    kind: str = "webhook"


@dataclass(frozen=True, slots=True)
class AppriseSink:
    name: str
    urls: tuple[str, ...] = field(repr=False)  # may carry tokens
    min_severity: str | None = None
    kind: str = "apprise"


@dataclass(frozen=True, slots=True)
class SyslogSink:
    name: str
    host: str
    port: int
    protocol: str = "udp"
    hostname: str | None = None
    timeout: float = 5.0
    min_severity: str | None = None
    kind: str = "syslog"


Sink = WebhookSink | AppriseSink | SyslogSink


@dataclass(frozen=True, slots=True)
class NotifyConfig:
    sinks: tuple[Sink, ...] = ()
    min_severity: str = "low"
    on_update: bool = False
    max_attempts: int = 8
    backoff: float = 2.0
    max_backoff: float = 600.0

    def sink(self, name: str) -> Sink | None:
        return next((s for s in self.sinks if s.name == name), None)

    def wants(self, sink: Sink, severity: str, *, is_new: bool) -> bool:
        """Whether an alert of this severity (new or updated) goes to this sink."""
        if not is_new and not self.on_update:
            return False
        floor = sink.min_severity or self.min_severity
        return severity_rank(severity) >= severity_rank(floor)


def severity_rank(name: str) -> int:
    return SEVERITY_ORDER.index(name) if name in SEVERITY_ORDER else 0


def notify_config(config: dict[str, Any]) -> NotifyConfig:
    """Parse ``config["notify"]`` (the whole parsed file is passed in); secrets are read here."""
    table = config.get("notify", {})
    if not isinstance(table, dict):
        raise UserError("[notify] must be a table")
    _known(table, _TOP, "[notify]")
    sinks: list[Sink] = []
    for raw in _entries(table, "webhook"):
        sinks.append(_webhook(raw))
    for raw in _entries(table, "apprise"):
        sinks.append(_apprise(raw))
    for raw in _entries(table, "syslog"):
        sinks.append(_syslog(raw))
    names = [s.name for s in sinks]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup is not None:
        raise UserError(f"[notify] two sinks are named {dup!r}; names must be unique")
    max_attempts = table.get("max_attempts", 8)
    if not isinstance(max_attempts, int) or isinstance(max_attempts, bool) or max_attempts < 1:
        raise UserError("[notify] max_attempts must be a whole number of at least 1")
    on_update = table.get("on_update", False)
    if not isinstance(on_update, bool):
        raise UserError("[notify] on_update must be true or false")
    return NotifyConfig(
        sinks=tuple(sinks),
        min_severity=_severity(table.get("min_severity", "low"), "[notify] min_severity"),
        on_update=on_update,
        max_attempts=max_attempts,
        backoff=_seconds(table.get("backoff", "2s"), "[notify] backoff"),
        max_backoff=_seconds(table.get("max_backoff", "10m"), "[notify] max_backoff"),
    )


def _entries(table: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    value = table.get(kind, [])
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise UserError(
            f"[notify] {kind} must be a table or an array of tables ([[notify.{kind}]])"
        )
    return value


def _known(table: dict[str, Any], keys: frozenset[str], where: str) -> None:
    unknown = sorted(set(table) - keys)
    if unknown:
        raise UserError(f"{where} unknown key {unknown[0]!r}; valid: {', '.join(sorted(keys))}")


def _name(raw: dict[str, Any], kind: str) -> str:
    name = raw.get("name", kind)
    if not isinstance(name, str) or not name.strip() or len(name) > 64:
        raise UserError(f"[[notify.{kind}]] name must be a short non-empty string")
    return name.strip()


def _webhook(raw: dict[str, Any]) -> WebhookSink:
    name = _name(raw, "webhook")
    where = f"[[notify.webhook]] {name!r}"
    _known(raw, _WEBHOOK, where)
    url = raw.get("url")
    if not isinstance(url, str):
        raise UserError(f"{where}: url is required")
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise UserError(f"{where}: url must be an http(s) URL")
    insecure = raw.get("insecure_http", False)
    if parts.scheme == "http" and not insecure and not _is_loopback(parts.hostname):
        raise UserError(
            f"{where}: plain http beyond loopback would send alerts in clear; use https "
            "(or insecure_http = true when TLS ends in a proxy on this host's network)"
        )
    secret_ref = raw.get("secret")
    if not isinstance(secret_ref, str):
        raise UserError(f"{where}: secret is required ($env:NAME or $file:/path)")
    secret = read_secret(secret_ref, f"{where} secret")
    if len(secret) < 16:
        raise UserError(f"{where}: the secret must be at least 16 bytes")
    ca_file = raw.get("ca_file")
    if ca_file is not None and (not isinstance(ca_file, str) or not Path(ca_file).is_file()):
        raise UserError(f"{where}: ca_file must be the path of a PEM file that exists")
    return WebhookSink(
        name=name,
        url=url,
        secret=secret.encode(),
        ca_file=Path(ca_file) if ca_file else None,
        timeout=_seconds(raw.get("timeout", "5s"), f"{where} timeout"),
        min_severity=_optional_severity(raw, where),
    )


def _apprise(raw: dict[str, Any]) -> AppriseSink:
    name = _name(raw, "apprise")
    where = f"[[notify.apprise]] {name!r}"
    _known(raw, _APPRISE, where)
    urls = raw.get("urls")
    if isinstance(urls, str):
        urls = [urls]
    if not isinstance(urls, list) or not urls or not all(isinstance(u, str) for u in urls):
        raise UserError(f"{where}: urls must be a non-empty list of apprise URLs")
    resolved = tuple(
        read_secret(u, f"{where} url") if u.startswith(("$env:", "$file:")) else u for u in urls
    )
    return AppriseSink(name=name, urls=resolved, min_severity=_optional_severity(raw, where))


def _syslog(raw: dict[str, Any]) -> SyslogSink:
    name = _name(raw, "syslog")
    where = f"[[notify.syslog]] {name!r}"
    _known(raw, _SYSLOG, where)
    address = raw.get("address")
    if not isinstance(address, str) or not address:
        raise UserError(f"{where}: address is required (host:port)")
    host, port = _host_port(address, where)
    protocol = raw.get("protocol", "udp")
    if protocol not in ("udp", "tcp"):
        raise UserError(f"{where}: protocol must be udp or tcp")
    hostname = raw.get("hostname")
    if hostname is not None and not isinstance(hostname, str):
        raise UserError(f"{where}: hostname must be a string")
    return SyslogSink(
        name=name,
        host=host,
        port=port,
        protocol=protocol,
        hostname=hostname,
        timeout=_seconds(raw.get("timeout", "5s"), f"{where} timeout"),
        min_severity=_optional_severity(raw, where),
    )


def _host_port(address: str, where: str) -> tuple[str, int]:
    host, sep, port_text = address.rpartition(":")
    if not sep or not port_text.isdigit():
        raise UserError(f"{where}: address must be host:port (e.g. siem.example.org:514)")
    port = int(port_text)
    if not 0 < port < 65536:
        raise UserError(f"{where}: port {port} is out of range")
    return host.strip("[]"), port


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _severity(value: Any, where: str) -> str:
    if value not in SEVERITY_ORDER:
        raise UserError(f"{where} must be one of {', '.join(SEVERITY_ORDER)}")
    return str(value)


def _optional_severity(raw: dict[str, Any], where: str) -> str | None:
    value = raw.get("min_severity")
    return None if value is None else _severity(value, f"{where} min_severity")


def _seconds(value: Any, where: str) -> float:
    try:
        micros = parse_duration(str(value))
    except ValueError as exc:
        raise UserError(f"{where}: {exc}") from None
    if micros <= 0:
        raise UserError(f"{where} must be longer than zero")
    return micros / 1_000_000


def read_secret(reference: str, what: str) -> str:
    """A secret from ``$env:NAME`` or ``$file:/path``; the file must be private (0600).

    The value never appears in a message: errors name the variable or the file only.
    """
    if reference.startswith("$env:"):
        value = os.environ.get(reference[5:])
        if not value:
            raise UserError(f"{what}: environment variable {reference[5:]} is not set")
        return value.strip()
    if reference.startswith("$file:"):
        path = Path(reference[6:])
        try:
            mode = path.stat().st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise UserError(f"{what}: {path} is readable by group or others; chmod 600 {path}")
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise UserError(f"{what}: cannot read {path}: {exc.strerror}") from None
        if not value:
            raise UserError(f"{what}: {path} is empty")
        return value
    raise UserError(f"{what} must be a reference ($env:NAME or $file:/path), not a literal")
