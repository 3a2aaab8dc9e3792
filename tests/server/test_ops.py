"""Operations: metrics, health, the docs page, rate limits, TLS and mTLS on a real server."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from prometheus_client.parser import text_string_to_metric_families
from tests.server.conftest import Running, docs, make_tokens, run_server, settings_for


def test_metrics_exposition_parses(running: Running) -> None:
    """/metrics is valid Prometheus text with ingest, rejection, latency and store figures."""
    with running.client("ingest") as c:
        c.post("/api/v1/events", json=docs(4, collector_host="web-1", collector_source="file"))
        c.post("/api/v1/events", json=docs(2, category="unparsed", action="unparsed"))
        c.post("/api/v1/events", json=[{"time": "2024-01-01T00:00:00Z"}])
    with running.client() as c:
        text = c.get("/metrics").text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    web = (("collector_host", "web-1"), ("collector_source", "file"))
    assert samples[("keeptrail_events_ingested_total", web)] == 4
    assert sum(v for (n, _), v in samples.items() if n == "keeptrail_events_unparsed_total") == 2
    assert samples[("keeptrail_events_rejected_total", ())] == 1
    assert samples[("keeptrail_ingest_latency_seconds_count", ())] == 2
    assert samples[("keeptrail_store_events", ())] >= 6
    assert samples[("keeptrail_store_bytes", ())] > 0
    assert samples[("keeptrail_checkpoint_size", ())] >= 6
    route = (("route", "/api/v1/events"), ("status", "200"))
    assert samples[("keeptrail_http_requests_total", route)] == 2


def test_health_and_docs_page(running: Running) -> None:
    """healthz and readyz answer; /docs is a self-contained page that loads nothing remote."""
    with running.client() as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        assert c.get("/readyz").json()["status"] == "ready"
        page = c.get("/docs").text
        spec = c.get("/openapi.json").json()
    assert "/api/v1/events" in page
    assert "<script" not in page
    assert "http://" not in page
    assert "https://" not in page
    assert "/api/v1/events/{event_id}/proof" in spec["paths"]


def test_rate_limit_answers_429_with_retry_after(data_dir: Path) -> None:
    """A token over its bucket gets 429 with Retry-After; another token is unaffected."""
    tokens = make_tokens(data_dir)
    settings = settings_for(data_dir, rate_limit_per_second=0.5, rate_limit_burst=3)
    with run_server(settings) as (url, srv):
        running = Running(url, settings, srv, tokens)
        with running.client("viewer") as c:
            codes = [c.get("/api/v1/checkpoint").status_code for _ in range(5)]
            last = c.get("/api/v1/checkpoint")
        with running.client("auditor") as c:
            other = c.get("/api/v1/checkpoint").status_code
    assert codes[:3] == [200, 200, 200]
    assert codes[3:] == [429, 429]
    assert int(last.headers["Retry-After"]) >= 1
    assert last.json()["error"] == "rate_limited"
    assert other == 200


def _cert(
    tmp: Path,
    name: str,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
) -> tuple[Path, Path, x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    signer_cert, signer_key = issuer if issuer else (None, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(signer_cert.subject if signer_cert else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    cert = builder.sign(signer_key, hashes.SHA256())
    cert_path, key_path = tmp / f"{name}.crt", tmp / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path, cert, key


def test_tls_with_a_self_signed_certificate(tmp_path: Path, data_dir: Path) -> None:
    """The server speaks HTTPS with its configured certificate; plain HTTP gets nothing."""
    cert, key, _, _ = _cert(tmp_path, "server", None)
    tokens = make_tokens(data_dir)
    settings = settings_for(data_dir, tls_cert=cert, tls_key=key)
    with run_server(settings) as (url, _):
        assert url.startswith("https://")
        r = httpx.get(
            f"{url}/api/v1/stats",
            verify=ssl.create_default_context(cafile=str(cert)),
            headers={"Authorization": f"Bearer {tokens['viewer']}"},
        )
        assert r.status_code == 200
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{url}/healthz")  # not trusted without the certificate
        with pytest.raises(httpx.HTTPError):
            httpx.get(url.replace("https://", "http://") + "/healthz")


def test_mtls_requires_a_client_certificate(tmp_path: Path, data_dir: Path) -> None:
    """With a client CA configured, only clients presenting a certificate it signed connect."""
    ca_path, _, ca_cert, ca_key = _cert(tmp_path, "agents-ca", None, ca=True)
    server_cert, server_key, _, _ = _cert(tmp_path, "server", None)
    client_cert, client_key, _, _ = _cert(tmp_path, "agent", (ca_cert, ca_key))
    tokens = make_tokens(data_dir)
    settings = settings_for(
        data_dir, tls_cert=server_cert, tls_key=server_key, tls_client_ca=ca_path
    )
    with run_server(settings) as (url, _):
        trust = ssl.create_default_context(cafile=str(server_cert))
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{url}/healthz", verify=trust)
        with_cert = ssl.create_default_context(cafile=str(server_cert))
        with_cert.load_cert_chain(str(client_cert), str(client_key))
        r = httpx.post(
            f"{url}/api/v1/events",
            json=docs(2),
            verify=with_cert,
            headers={"Authorization": f"Bearer {tokens['ingest']}"},
        )
        assert r.json()["stored"] == 2
