"""The syslog listener: real `logger` over UDP and TCP, a Python TLS client, RFC 6587 framing."""

from __future__ import annotations

import datetime
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from keeptrail.agent.spool import Spool
from keeptrail.agent.status import SourceStats
from keeptrail.sources.syslog_listener import FrameSplitter, SyslogListener, SyslogSettings

LOGGER = shutil.which("logger")
needs_logger = pytest.mark.skipif(
    LOGGER is None, reason="util-linux logger (bsdutils) not installed"
)


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[SyslogListener, Spool, Path]]:
    cert, key = self_signed(tmp_path)
    settings = SyslogSettings(
        name="net",
        udp=["127.0.0.1:0"],
        tcp=["127.0.0.1:0"],
        tls=["127.0.0.1:0"],
        tls_cert=cert,
        tls_key=key,
        flush_seconds=0.02,
    )
    spool = Spool(tmp_path / "spool.db")
    li = SyslogListener(settings, spool, host="collector", stats=SourceStats("net", "syslog"))
    li.bind()
    stop = threading.Event()
    thread = threading.Thread(target=li.run, args=(stop,))
    thread.start()
    yield li, spool, cert
    stop.set()
    thread.join(5)
    spool.close()


def wait_docs(spool: Spool, n: int) -> list[dict[str, object]]:
    deadline = time.monotonic() + 10
    while spool.depth[0] < n and time.monotonic() < deadline:
        time.sleep(0.02)
    return [orjson.loads(e.doc) for e in spool.peek(1000)]


@needs_logger
@pytest.mark.parametrize("transport", ["--udp", "--tcp"])
@pytest.mark.parametrize("protocol", ["--rfc3164", "--rfc5424"])
def test_logger_messages_become_parsed_events(
    listener: tuple[SyslogListener, Spool, Path], transport: str, protocol: str
) -> None:
    """An sshd failure sent by util-linux logger arrives parsed, with the sender's address."""
    li, spool, _ = listener
    port = li.addresses["udp" if transport == "--udp" else "tcp"][0][1]
    message = "Failed password for invalid user admin from 203.0.113.9 port 4242 ssh2"
    cmd = [LOGGER, "--server", "127.0.0.1", "--port", str(port), transport, protocol]
    subprocess.run([*cmd, "--tag", "sshd", "--id=4242", message], check=True, timeout=10)
    (doc,) = wait_docs(spool, 1)
    assert doc["action"] == "ssh.login"
    assert doc["outcome"] == "failure"
    assert doc["source"]["ip"] == "203.0.113.9"
    assert doc["actor"]["name"] == "admin"
    peer = doc["details"]["peer"]
    assert peer.startswith(("udp://127.0.0.1:", "tcp://127.0.0.1:"))
    assert doc["collector"]["source"] == "syslog"


@needs_logger
def test_logger_octet_counting_over_tcp(listener: tuple[SyslogListener, Spool, Path]) -> None:
    """RFC 6587 octet-counted frames from logger --octet-count are split correctly."""
    li, spool, _ = listener
    port = li.addresses["tcp"][0][1]
    cmd = [LOGGER, "--server", "127.0.0.1", "--port", str(port), "--tcp", "--octet-count"]
    subprocess.run([*cmd, "--tag", "app", "first\nstill first"], check=True, timeout=10)
    subprocess.run([*cmd, "--tag", "app", "second"], check=True, timeout=10)
    docs = wait_docs(spool, 2)
    raws = sorted(str(d["raw"]) for d in docs)
    assert raws[0].endswith("] first\nstill first")  # the newline stays inside the message
    assert raws[1].endswith("] second")


def test_tls_client_with_octet_counting(listener: tuple[SyslogListener, Spool, Path]) -> None:
    """RFC 5425: a Python ssl client verifying our self-signed certificate delivers messages."""
    li, spool, cert = listener
    port = li.addresses["tls"][0][1]
    ctx = ssl.create_default_context(cafile=str(cert))
    msgs = [
        "<86>1 2024-03-01T12:00:00.000Z web-1 sudo - - - alice : TTY=pts/0 ; PWD=/home/alice ;"
        " USER=root ; COMMAND=/usr/bin/id",
        "<38>Mar  1 12:00:01 web-1 sshd[9]: Accepted publickey for bob from 192.0.2.7 port 22 ssh2",
    ]
    with (
        socket.create_connection(("127.0.0.1", port)) as raw,
        ctx.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        for m in msgs:
            data = m.encode()
            tls.sendall(b"%d %b" % (len(data), data))
    docs = sorted(wait_docs(spool, 2), key=lambda d: str(d["action"]))
    assert [d["action"] for d in docs] == ["ssh.login", "sudo.command"]
    assert all(str(d["details"]["peer"]).startswith("tls://127.0.0.1:") for d in docs)


def test_frame_splitter_handles_both_framings_in_pieces() -> None:
    """Octet counting and newline framing, fed byte by byte, give the same messages."""
    stream = b"5 hello<13>newline framed\n10 two\nlines!<13>tail"
    splitter = FrameSplitter(max_message=1024)
    out: list[bytes] = []
    for i in range(len(stream)):
        out += splitter.feed(stream[i : i + 1])
    out += splitter.finish()
    assert out == [b"hello", b"<13>newline framed", b"two\nlines!", b"<13>tail"]


def test_frame_splitter_cuts_endless_lines_without_dropping() -> None:
    """A line longer than the limit is cut into pieces, never discarded."""
    splitter = FrameSplitter(max_message=10)
    assert splitter.feed(b"<" + b"x" * 24) == [b"<" + b"x" * 9, b"x" * 10]
    assert splitter.finish() == [b"xxxxx"]


def test_frame_splitter_delivers_messages_read_before_a_refused_frame() -> None:
    """Messages completed before an absurd octet count in the same read still come out."""
    splitter = FrameSplitter(max_message=1024)
    out = splitter.feed(b"5 hellosecond line\n999999999 x")
    assert out == [b"hello", b"second line"]
    with pytest.raises(ValueError, match="octet count"):
        splitter.feed(b"more")
