"""The shipper: spool → gzip JSON lines → ``POST /api/v1/events`` → acknowledge.

A batch leaves the spool only after the server answered 2xx (it answers only after its commit),
so a crash anywhere resends at most the batch in flight, and the server, idempotent on event
id, stores it once. What each answer means:

* 2xx — delivered: the batch is deleted from the spool;
* 413 — too large: the batch is split in halves, each sent on its own;
* 400 — rejected: the batch is bisected until the bad events stand alone, and each lone bad
  event is quarantined (written to ``dead-letter/`` with the server's reasons, never deleted)
  so one bad line cannot hold back the good ones;
* 401/403 — a configuration problem: shipping stops (logged loudly, ``auth_failed`` in the
  status) and is retried every ``auth_retry`` seconds; sources keep spooling up to the bound;
* 429, 5xx, connection errors, timeouts — retried with exponential backoff and jitter
  (``Retry-After`` honoured), forever: the spool holds the events meanwhile.

The token is sent as a header and never logged.
"""

from __future__ import annotations

import gzip
import logging
import os
import random
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson

from keeptrail.agent.spool import Entry, Spool
from keeptrail.agent.status import AgentStatus

log = logging.getLogger("keeptrail.agent.shipper")


@dataclass(slots=True)
class ShipperSettings:
    """Where and how to ship; see docs/agent.md for the configuration file."""

    url: str
    token: str
    dead_letter_dir: Path
    ca_file: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    batch_size: int = 1000
    batch_bytes: int = 4 << 20
    linger: float = 0.2  # wait this long for a batch to fill; always below one second
    timeout: float = 30.0
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    auth_retry: float = 60.0

    def __repr__(self) -> str:  # never show the token
        return f"ShipperSettings(url={self.url!r}, token=<hidden>)"


class Shipper:
    """Moves events from the spool to the server until ``stop`` is set."""

    def __init__(
        self, spool: Spool, settings: ShipperSettings, status: AgentStatus, stop: threading.Event
    ) -> None:
        self.spool = spool
        self.settings = settings
        self.status = status
        self.stop = stop
        self._failures = 0
        self._retry_after: str | None = None
        settings.dead_letter_dir.mkdir(parents=True, exist_ok=True)
        self.client = httpx.Client(
            verify=_ssl_context(settings),
            timeout=settings.timeout,
            headers={
                "Authorization": f"Bearer {settings.token}",
                "Content-Type": "application/x-ndjson",
                "Content-Encoding": "gzip",
            },
        )
        self.endpoint = settings.url.rstrip("/") + "/api/v1/events"

    def run(self) -> None:
        """Ship until stopped; each pass takes the oldest spooled events."""
        s = self.settings
        try:
            while not self.stop.is_set():
                if self.spool.wait_for(s.batch_size, s.linger) == 0:
                    self.spool.wait_for(1, 1.0)
                    continue
                self.ship_once()
        finally:
            self.client.close()

    def ship_once(self) -> int:
        """Send one batch (splitting it as the server asks); return the events delivered."""
        batch = self.spool.peek(self.settings.batch_size, self.settings.batch_bytes)
        delivered = 0
        todo: deque[list[Entry]] = deque([batch] if batch else [])
        while todo and not self.stop.is_set():
            chunk = todo.popleft()
            code, body = self._post(chunk)
            if 200 <= code < 300:
                self._delivered(chunk, body)
                delivered += len(chunk)
            elif _rejects_events(code, body) and len(chunk) > 1:
                half = len(chunk) // 2
                todo.extendleft([chunk[half:], chunk[:half]])
                log.warning("server answered %d to %d events: splitting", code, len(chunk))
            elif _rejects_events(code, body):
                self._quarantine(chunk, code, body)
            else:
                todo.appendleft(chunk)
                self._wait_after_failure(code, body)
        return delivered

    # --- one request --------------------------------------------------------------------------

    def _post(self, chunk: list[Entry]) -> tuple[int, bytes]:
        payload = gzip.compress(b"\n".join(e.doc for e in chunk) + b"\n", compresslevel=3)
        try:
            response = self.client.post(self.endpoint, content=payload)
        except httpx.HTTPError as exc:  # connection refused, reset, timeout, TLS failure
            return 0, f"{type(exc).__name__}: {exc}".encode()
        self._retry_after = response.headers.get("retry-after")
        return response.status_code, response.content

    def _delivered(self, chunk: list[Entry], body: bytes) -> None:
        self.spool.ack(chunk)
        st = self.status
        try:
            answer = orjson.loads(body)
            st.duplicates += int(answer.get("duplicates", 0))
        except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
            pass
        st.shipped += len(chunk)
        st.last_ship_us = time.time_ns() // 1000
        if st.auth_failed or self._failures:
            log.warning("delivering again after %d failed attempts", self._failures)
        st.auth_failed = False
        st.last_error = None
        self._failures = 0

    def _quarantine(self, chunk: list[Entry], code: int, body: bytes) -> None:
        """Keep a rejected event in the dead-letter directory, then let the queue move on."""
        entry = chunk[0]
        stem = f"{time.strftime('%Y%m%dT%H%M%S')}-{entry.id}"
        target = self.settings.dead_letter_dir / f"{stem}.ndjson"
        answer = body.decode("utf-8", "replace")
        reason = {"status": code, "answer": answer, "id": entry.id}
        tmp = target.with_suffix(".tmp")
        with tmp.open("wb") as f:
            f.write(entry.doc + b"\n")
            f.flush()
            os.fsync(f.fileno())
        tmp.rename(target)
        target.with_suffix(".reason.json").write_bytes(orjson.dumps(reason))
        self.spool.ack(chunk)
        self.status.quarantined += 1
        log.error(
            "SERVER REJECTED event %s (HTTP %d): quarantined to %s — reason: %s",
            entry.id,
            code,
            target,
            answer[:500],
        )

    def _wait_after_failure(self, code: int, body: bytes) -> None:
        s = self.settings
        st = self.status
        self._failures += 1
        st.retries += 1
        detail = body.decode("utf-8", "replace")[:300]
        st.last_error = f"HTTP {code}: {detail}" if code else detail
        if code in (401, 403):
            st.auth_failed = True
            log.error(
                "SERVER REFUSED OUR TOKEN (HTTP %d: %s): shipping paused, retry in %.1fs;"
                " check the agent's token and its role; events keep spooling",
                code,
                detail,
                s.auth_retry,
            )
            self.stop.wait(s.auth_retry)
            return
        delay = min(s.backoff_max, s.backoff_initial * 2 ** min(self._failures - 1, 20))
        delay = delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 — jitter, not crypto
        if code == 429 and self._retry_after and self._retry_after.isdigit():
            delay = max(delay, min(float(self._retry_after), s.backoff_max))
        level = logging.WARNING if self._failures < 5 else logging.ERROR
        log.log(
            level, "shipping failed (%s); retry %d in %.2fs", st.last_error, self._failures, delay
        )
        self.stop.wait(delay)


def _rejects_events(code: int, body: bytes) -> bool:
    """Whether the server refused these events themselves (split, then quarantine the culprit).

    Only a 413, or a 400 whose answer says ``invalid_events`` (docs/api.md), is about the
    events; any other 400 (a malformed body, a proxy's error page) is retried like a 5xx, so a
    transient fault never sends good events to the dead-letter directory.
    """
    if code == 413:
        return True
    if code != 400:
        return False
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    return isinstance(answer, dict) and answer.get("error") == "invalid_events"


def _ssl_context(s: ShipperSettings) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(s.ca_file) if s.ca_file else None)
    if s.client_cert:
        ctx.load_cert_chain(str(s.client_cert), str(s.client_key) if s.client_key else None)
    return ctx
