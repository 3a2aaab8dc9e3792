"""A syslog receiver: RFC 3164 and RFC 5424 messages over UDP, TCP (RFC 6587) and TLS (RFC 5425).

Each listener binds the addresses it is configured with (loopback by default, see
docs/agent.md). TCP and TLS streams carry either framing of RFC 6587, told apart per message by
its first byte: a digit starts an octet count (``LEN SP MSG``, the only framing RFC 5425
allows), anything else a message that ends at a newline. A message becomes an event through the
same :func:`~keeptrail.parsers.detect.parse_line` as a file line, with the receive time as the
reference time (it anchors the year of BSD timestamps); the sender's address and the transport
are kept in ``details.peer``. Undecodable bytes are kept exactly (``details.raw_base64``).

Receivers hand messages to one writer thread through a bounded queue; the writer spools them
in small batches. When the spool is full the queue fills and receivers block: TCP senders are
slowed by flow control; UDP datagrams then wait in (and may overflow) the kernel's buffer —
that is UDP. Messages still in the queue when the agent is killed are lost: syslog has no
acknowledgement to withhold, so use files or journald where every line must be accounted for.
"""

from __future__ import annotations

import base64
import logging
import queue
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from pathlib import Path
from typing import Final

from keeptrail.agent.spool import Spool, SpoolClosed
from keeptrail.agent.status import SourceStats
from keeptrail.event import Event, uuid7
from keeptrail.parsers.detect import parse_line
from keeptrail.parsers.syslog import FrameContext

log = logging.getLogger("keeptrail.sources.syslog")

_OCTET_COUNT_LIMIT: Final = 16  # an octet count may claim up to 16 × max_message bytes
Message = tuple[bytes, str, int]  # (payload, peer, receive time in µs)


@dataclass(slots=True)
class SyslogSettings:
    """One ``type = "syslog"`` source: the addresses to bind and the TLS material."""

    name: str
    udp: list[str] = field(default_factory=list)
    tcp: list[str] = field(default_factory=list)
    tls: list[str] = field(default_factory=list)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None  # set: senders must present a certificate it signed
    max_message: int = 64 * 1024
    tz: tzinfo = UTC
    batch_size: int = 500
    flush_seconds: float = 0.1


class FrameSplitter:
    """RFC 6587 framing of one TCP stream: octet counting or newline, detected per message."""

    def __init__(self, max_message: int) -> None:
        self.max_message = max_message
        self.buf = bytearray()
        self.error: ValueError | None = None

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return the messages completed by them.

        A framing the listener refuses (an absurd octet count) is raised on the *next* call,
        so the messages completed before it in the same read are still delivered.
        """
        if self.error is not None:
            raise self.error
        buf = self.buf
        buf += data
        out: list[bytes] = []
        while buf:
            if buf[:1].isdigit():
                space = buf.find(b" ", 0, 12)
                if space > 0 and buf[:space].isdigit():
                    size = int(buf[:space])
                    if size > self.max_message * _OCTET_COUNT_LIMIT:
                        self.error = ValueError(
                            f"octet count {size} exceeds the message size limit"
                        )
                        break
                    if len(buf) < space + 1 + size:
                        break
                    out.append(bytes(buf[space + 1 : space + 1 + size]))
                    del buf[: space + 1 + size]
                    continue
                if space < 0 and len(buf) < 12:
                    break  # the count is not complete yet
            newline = buf.find(b"\n")
            if newline < 0:
                if len(buf) >= self.max_message:  # an endless line: cut it, never drop it
                    out.append(bytes(buf[: self.max_message]))
                    del buf[: self.max_message]
                    continue
                break
            out.append(bytes(buf[:newline]))
            del buf[: newline + 1]
        return out

    def finish(self) -> list[bytes]:
        """The connection closed: a last message without its newline is still a message."""
        if self.error is not None:
            raise self.error
        rest, self.buf = bytes(self.buf), bytearray()
        return [rest] if rest.strip() else []


def to_event(payload: bytes, peer: str, received_us: int, tz: tzinfo, host: str) -> Event:
    """One received message as an event (pure: the receive time is an argument)."""
    data = payload.rstrip(b"\r\n\x00")
    try:
        text = data.decode()
        exact = None
    except UnicodeDecodeError:
        text = data.decode("utf-8", "backslashreplace")
        exact = base64.b64encode(data).decode()
    event = parse_line(text, FrameContext(reference_us=received_us, tz=tz))
    event.id = uuid7()
    event.ingested_at = received_us
    event.collector_host = host
    event.collector_source = "syslog"
    event.details["peer"] = peer
    if exact is not None:
        event.details["raw_base64"] = exact
    return event


class SyslogListener:
    """Binds the configured addresses and spools every message received on them."""

    def __init__(self, settings: SyslogSettings, spool: Spool, *, host: str, stats: SourceStats):
        self.settings = settings
        self.spool = spool
        self.host = host
        self.stats = stats
        self.queue: queue.Queue[Message] = queue.Queue(maxsize=10_000)
        self.sockets: list[tuple[str, socket.socket]] = []
        self.addresses: dict[str, list[tuple[str, int]]] = {"udp": [], "tcp": [], "tls": []}
        self._tls: ssl.SSLContext | None = None

    def bind(self) -> None:
        """Open every configured socket (port 0 picks a free port, see ``addresses``)."""
        if self.sockets:
            return
        s = self.settings
        if s.tls:
            if not s.tls_cert:
                raise ValueError(f"syslog source {s.name}: tls needs tls_cert (and tls_key)")
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            ctx.load_cert_chain(str(s.tls_cert), str(s.tls_key) if s.tls_key else None)
            if s.tls_client_ca:
                ctx.verify_mode = ssl.CERT_REQUIRED
                ctx.load_verify_locations(str(s.tls_client_ca))
            self._tls = ctx
        for kind, addrs in (("udp", s.udp), ("tcp", s.tcp), ("tls", s.tls)):
            for addr in addrs:
                host, port = _split_address(addr)
                family = socket.AF_INET6 if ":" in host else socket.AF_INET
                kind_type = socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM
                sock = socket.socket(family, kind_type)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((host, port))
                if kind != "udp":
                    sock.listen(64)
                sock.settimeout(0.5)
                self.sockets.append((kind, sock))
                self.addresses[kind].append(sock.getsockname()[:2])
                log.info("syslog source %s listening on %s %s:%d", s.name, kind, host, port)

    def run(self, stop: threading.Event) -> None:
        """Receive until ``stop``; the calling thread spools what the receivers queue."""
        self.bind()
        for kind, sock in self.sockets:
            target = self._udp if kind == "udp" else self._accept
            threading.Thread(target=target, args=(kind, sock, stop), daemon=True).start()
        try:
            self._write(stop)
        finally:
            for _, sock in self.sockets:
                sock.close()

    # --- receivers ----------------------------------------------------------------------------

    def _udp(self, kind: str, sock: socket.socket, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                data, addr = sock.recvfrom(self.settings.max_message)
            except TimeoutError:
                continue
            except OSError:
                return
            self.queue.put((data, f"udp://{_peer(addr)}", time.time_ns() // 1000))

    def _accept(self, kind: str, sock: socket.socket, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                conn, addr = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            args = (conn, f"{kind}://{_peer(addr)}", stop)
            threading.Thread(target=self._stream, args=args, daemon=True).start()

    def _stream(self, conn: socket.socket, peer: str, stop: threading.Event) -> None:
        splitter = FrameSplitter(self.settings.max_message)
        try:
            if self._tls is not None and peer.startswith("tls"):
                conn.settimeout(10)
                conn = self._tls.wrap_socket(conn, server_side=True)
            conn.settimeout(0.5)
            while not stop.is_set():
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    continue
                now = time.time_ns() // 1000
                if not data:
                    for msg in splitter.finish():
                        self.queue.put((msg, peer, now))
                    return
                for msg in splitter.feed(data):
                    self.queue.put((msg, peer, now))
        except (OSError, ValueError) as exc:
            log.warning("syslog source %s: connection from %s: %s", self.settings.name, peer, exc)
        finally:
            conn.close()

    # --- the writer ---------------------------------------------------------------------------

    def _write(self, stop: threading.Event) -> None:
        s = self.settings
        while not (stop.is_set() and self.queue.empty()):
            batch: list[Message] = []
            deadline = time.monotonic() + s.flush_seconds
            while len(batch) < s.batch_size:
                try:
                    batch.append(self.queue.get(timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    break
            if not batch:
                continue
            events = [to_event(d, peer, at, s.tz, self.host) for d, peer, at in batch]
            try:
                self.spool.append(events)
            except SpoolClosed:
                return
            self.stats.count(len(events), len(events))


def _split_address(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


def _peer(addr: tuple[str, int] | tuple[str, int, int, int]) -> str:
    host, port = addr[0], addr[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
