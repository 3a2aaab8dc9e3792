"""nginx and Apache access logs: common, combined, vhost_combined, and JSON lines.

Each line is recognised on its own (a file may switch format after a config change): ``{``
starts a JSON record (nginx ``log_format ... escape=json``, key names configurable through
:class:`WebConfig`), anything else is read as the common log format with its optional virtual
host in front and optional referer / user agent / extra fields behind.

Everything in a request is attacker controlled. The client address is the line's first field
(or second after a virtual host), which the server writes; ``X-Forwarded-For`` is used only
when the direct client is a configured trusted proxy. The user (``$remote_user``, from the
``Authorization`` header, present even when authentication failed) cannot contain a double
quote (both servers escape it), so the request field is always the first quoted one and the
timestamp the last ``[...]`` before it: a user name holding ``[date] "GET /admin"`` does not
move the request or the status.

Outcome: 1xx–3xx ``success``; 401 and 407 ``failure`` / ``unauthorized``; 403 ``failure`` /
``forbidden``; 429 ``failure`` / ``rate_limited``; other 4xx and all 5xx ``unknown`` — the
server did not refuse access, the request failed for another reason (``details.status``
says which).
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Final

from keeptrail.event import DetailValue, Event, datetime_to_micros
from keeptrail.netaddr import canonical_ip, is_hostname
from keeptrail.parsers.base import LineAssembler, StreamContext, SyslogMessage
from keeptrail.parsers.json_line import json_object
from keeptrail.parsers.numerals import INT64_MAX, ascii_int, epoch_micros, put_int
from keeptrail.parsers.syslog import MONTHS

# Client addresses repeat; canonicalising each once is a measurable share of the parse.
_cached_ip = lru_cache(maxsize=16_384)(canonical_ip)

NAME: Final = "web_access"
PROGRAMS: Final = ("nginx", "apache", "apache2", "httpd")

_CLF = re.compile(
    r'(?:(?P<vhost>[^\s"]+) )?(?P<client>[^\s"]+) (?P<ident>[^\s"]+) (?P<user>[^"]*?) '
    r"\[(?P<time>[0-9]{1,2}/\w{3}/[0-9]{4}:[0-9]{2}:[0-9]{2}:[0-9]{2}(?: [+-][0-9]{4})?)\] "
    r'"(?P<request>(?:[^"\\]|\\.)*)" (?P<status>\d{3}|-) (?P<bytes>\d+|-)'
    r'(?: "(?P<referer>(?:[^"\\]|\\.)*)" "(?P<agent>(?:[^"\\]|\\.)*)")?(?P<rest>.*)',
    re.DOTALL,
)
_SYSLOG_START = re.compile(r"(?:<\d{1,3}>)?(?:[A-Z][a-z]{2} [ \d]\d \d\d:|\d{4}-\d\d-\d\dT)")
_JSON_KEYS: Final[dict[str, tuple[str, ...]]] = {
    "client": ("remote_addr", "client_ip", "clientip", "client"),
    "user": ("remote_user", "user"),
    "time": ("time_iso8601", "time_local", "timestamp", "time", "@timestamp", "msec"),
    "request": ("request",),
    "method": ("request_method", "method"),
    "uri": ("request_uri", "uri", "path", "url"),
    "status": ("status", "status_code"),
    "bytes": ("body_bytes_sent", "bytes_sent", "bytes", "size"),
    "referer": ("http_referer", "referer", "referrer"),
    "agent": ("http_user_agent", "user_agent", "agent"),
    "request_time": ("request_time", "duration"),
    "forwarded_for": ("http_x_forwarded_for", "x_forwarded_for", "forwarded_for"),
    "vhost": ("host", "server_name", "http_host", "vhost"),
}


@dataclass(frozen=True, slots=True)
class WebConfig:
    """How to read one web server's lines.

    ``json_keys`` overrides, per field, the JSON keys tried in order (defaults: nginx variable
    names). ``trusted_proxies`` are CIDRs whose ``X-Forwarded-For`` is believed: the source
    becomes the right-most forwarded address that is not itself a trusted proxy.
    ``sensitive`` are path globs (``/admin*``) or prefixes (``/api/keys``) that set
    ``details.sensitive``. ``system`` is ``target.system`` (``http``, or ``nginx``...).
    """

    json_keys: dict[str, tuple[str, ...]] = field(default_factory=dict)
    trusted_proxies: tuple[str, ...] = ()
    sensitive: tuple[str, ...] = ()
    system: str = "http"


def sniff(line: str) -> bool:
    """An access-log first line: common/combined (not syslog-wrapped) or nginx-style JSON."""
    if line.startswith("{"):
        return ('"request"' in line or '"request_uri"' in line or '"uri"' in line) and (
            '"status"' in line and ('"remote_addr"' in line or '"client_ip"' in line)
        )
    if _SYSLOG_START.match(line):
        return False
    m = _CLF.match(line)
    return m is not None and _client_of(m) is not None


def assembler(ctx: StreamContext, config: WebConfig | None = None) -> WebAccessAssembler:
    """A line-at-a-time assembler for one access log stream."""
    return WebAccessAssembler(ctx, config or WebConfig())


def parse(msg: SyslogMessage) -> Event | None:
    """An access-log line sent through syslog (nginx ``access_log syslog:...``), or ``None``."""
    parser = _syslog_parser()
    parser._ctx = StreamContext(reference_us=msg.time, host=msg.host)  # this line's context
    text = msg.message
    event = parser._parse_json(text) if text[:1] == "{" else parser._parse_clf(text)
    if event is not None:
        event.target_host = msg.host
    return event


@lru_cache(maxsize=1)
def _syslog_parser() -> WebAccessAssembler:
    """One parser (and minute cache) for every syslog-carried line, built on first use."""
    return WebAccessAssembler(StreamContext(reference_us=0), WebConfig())


def _client_of(m: re.Match[str]) -> str | None:
    """The client field, telling a virtual host in front from a user name with spaces."""
    vhost, client = m["vhost"], m["client"]
    if vhost is None:
        return client
    if canonical_ip(vhost) is not None:  # "1.2.3.4 - john smith [...]": no vhost after all
        return None
    return client


class WebAccessAssembler(LineAssembler):
    """Single-line records: every ``feed`` returns one event."""

    __slots__ = ("_config", "_keys", "_minutes", "_sensitive", "_trusted")

    def __init__(self, ctx: StreamContext, config: WebConfig) -> None:
        super().__init__(ctx)
        self._config = config
        self._keys = {**_JSON_KEYS, **config.json_keys}
        self._trusted = tuple(ipaddress.ip_network(c, strict=False) for c in config.trusted_proxies)
        patterns = [p if any(c in p for c in "*?[") else p + "*" for p in config.sensitive]
        self._sensitive = (
            re.compile("|".join(fnmatch.translate(p) for p in patterns)) if patterns else None
        )
        self._minutes: dict[str, int] = {}

    def parse(self, line: str) -> Event:
        """One line, one event (``unparsed`` when it is not an access-log line)."""
        event = self._parse_json(line) if line[:1] == "{" else self._parse_clf(line)
        if event is None:
            event = self._unparsed(line, "no_parser_matched")
        event.collector_parser = NAME
        return event

    def _parse_clf(self, line: str) -> Event | None:
        if _SYSLOG_START.match(line):  # syslog-wrapped: the syslog parser's (see parse())
            return None
        m = _CLF.match(line)
        if m is None:
            return None
        client = m["client"]
        vhost = m["vhost"]
        user = m["user"]
        if vhost is not None and _cached_ip(vhost) is not None:
            # "1.2.3.4 - john smith [...]": a user name with a space, not a virtual host
            client, user, vhost = vhost, f"{m['ident']} {user}", None
        stamp = self._clf_time(m["time"])
        details: dict[str, DetailValue] = {}
        rest = (m["rest"] or "").strip()
        forwarded = None
        if rest:
            details["extra"] = rest
            if rest.startswith('"'):
                forwarded = rest[1:].partition('"')[0]
        return self._event(
            stamp, client, user, m["request"], None, None, m["status"], m["bytes"],
            m["referer"], m["agent"], None, forwarded, vhost, details,
        )  # fmt: skip

    def _parse_json(self, line: str) -> Event | None:
        doc = json_object(line)
        if doc is None:
            return None

        def get(name: str) -> str | None:
            for key in self._keys.get(name, ()):
                value = doc.get(key)
                if value is not None and not isinstance(value, (dict, list)):
                    return str(value)
            return None

        client, status = get("client"), get("status")
        if client is None or status is None or (get("request") is None and get("uri") is None):
            return None
        stamp = self._any_time(get("time"))
        return self._event(
            stamp, client, get("user"), get("request"), get("method"), get("uri"), status,
            get("bytes"), get("referer"), get("agent"), get("request_time"),
            get("forwarded_for"), get("vhost"), {},
        )  # fmt: skip

    def _event(
        self,
        stamp: int | None,
        client: str,
        user: str | None,
        request: str | None,
        method: str | None,
        uri: str | None,
        status: str,
        size: str | None,
        referer: str | None,
        agent: str | None,
        request_time: str | None,
        forwarded: str | None,
        vhost: str | None,
        details: dict[str, DetailValue],
    ) -> Event:
        e = Event(
            time=self._ctx.reference_us if stamp is None else stamp,
            category="api",
            action="http.request",
            target_system=self._config.system,
            target_host=self._ctx.host,
        )
        if request is not None:
            parts = request.split(" ")
            if len(parts) >= 3 and parts[0].isalpha() and parts[-1].startswith("HTTP/"):
                method, uri = method or parts[0], uri or " ".join(parts[1:-1])
                details["protocol"] = parts[-1]
            elif len(parts) == 2 and parts[0].isalpha() and parts[1].startswith("/"):
                method, uri = method or parts[0], uri or parts[1]  # HTTP/0.9
            elif uri is None:
                details["request"] = request
        if method:
            details["method"] = method
        if uri is not None:
            path, sep, query = uri.partition("?")
            details["path"] = path
            if sep:
                details["query"] = query
            e.target_resource, e.target_resource_type = path, "url_path"
            if self._sensitive is not None and self._sensitive.match(path):
                details["sensitive"] = True
        code = ascii_int(status, max_value=999)
        if code is not None:
            details["status"] = code
            e.outcome = "success" if code < 400 else "unknown"
            reason = _REASONS.get(code)
            if reason is not None:
                e.outcome, e.reason, e.severity = "failure", reason, "low"
        put_int(details, "bytes", size, max_value=INT64_MAX)
        for key, value in (("referrer", referer), ("user_agent", agent), ("vhost", vhost)):
            if value and value != "-":
                details[key] = value
        if request_time:
            details["request_time"] = request_time
        if user and user.strip("- "):
            e.actor_name, e.actor_type = user, "user"
        self._source(e, client, forwarded, details)
        e.details = details
        return e

    def _source(
        self, e: Event, client: str, forwarded: str | None, details: dict[str, DetailValue]
    ) -> None:
        ip = _cached_ip(client)
        if ip is None:
            if is_hostname(client):
                e.source_host = client
            return
        e.source_ip = ip
        if not forwarded or forwarded == "-" or not self._is_trusted(ip):
            return
        for hop in reversed([h.strip() for h in forwarded.split(",")]):
            hop_ip = canonical_ip(hop)
            if hop_ip is None:
                return
            if not self._is_trusted(hop_ip):
                details["proxy_ip"] = ip
                e.source_ip = hop_ip
                return

    def _is_trusted(self, ip: str) -> bool:
        if not self._trusted:
            return False
        address = ipaddress.ip_address(ip)
        return any(address in net for net in self._trusted)

    def _clf_time(self, text: str) -> int | None:
        """``10/Oct/2000:13:55:36 -0700`` → µs; the minute is cached."""
        if not text.isascii():  # JSON time text reaches here too: digits are ASCII digits
            return None
        day, _, rest = text.partition("/")
        head, _, zone = text.partition(" ")
        key = head[:-3] + zone
        seconds = ascii_int(head[-2:], max_value=60)
        if seconds is None:
            return None
        minute = self._minutes.get(key)
        if minute is None:
            month = MONTHS.get(rest[:3])
            try:
                if month is None:
                    return None
                tz = timezone(
                    (-1 if zone[:1] == "-" else 1)
                    * timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5]))
                ) if zone else self._ctx.tz  # fmt: skip
                dt = datetime(
                    int(rest[4:8]), month, int(day), int(rest[9:11]), int(rest[12:14]), tzinfo=tz
                )
            except ValueError:
                return None
            minute = datetime_to_micros(dt)
            if len(self._minutes) > 4096:
                self._minutes.clear()
            self._minutes[key] = minute
        return minute + seconds * 1_000_000

    def _any_time(self, text: str | None) -> int | None:
        if text is None:
            return None
        if "/" in text and ":" in text:
            return self._clf_time(text)
        if text.replace(".", "", 1).isdigit():  # $msec; epoch_micros refuses '²' and the like
            return epoch_micros(text)
        try:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=self._ctx.tz)
        return datetime_to_micros(dt)


_REASONS: Final = {401: "unauthorized", 407: "unauthorized", 403: "forbidden", 429: "rate_limited"}
