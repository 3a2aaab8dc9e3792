"""A small real HTTP server on 127.0.0.1 that speaks the ingest contract, for agent tests.

It decodes what the shipper sends exactly as a server must (gzip, JSON lines, bearer token)
and answers from a script of status codes, then 200 once the script is used up. Accepted
events are kept by id, so a test can compare sets and count duplicates.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson


class IngestStub:
    """State shared with the handler: the script, the requests seen, the events stored."""

    def __init__(self, token: str = "t0ken", script: list[int] | None = None) -> None:
        self.token = token
        self.script = list(script or [])
        self.requests: list[tuple[int, int]] = []  # (events in the request, status answered)
        self.stored: dict[str, dict[str, Any]] = {}
        self.received = 0
        self.max_events = 0  # answer 413 above this many events (0: no limit)
        self.reject_marker = ""  # answer 400 to a batch containing this text
        self.bad_request_error = "invalid_events"  # the "error" of every 400 answer
        self.lock = threading.Lock()
        self.url = ""

    def handle(self, headers: Any, body: bytes) -> tuple[int, bytes]:
        if headers.get("Authorization") != f"Bearer {self.token}":
            with self.lock:
                self.requests.append((0, 401))
            return 401, b'{"detail": "bad token"}'
        assert headers.get("Content-Encoding") == "gzip"
        assert headers.get("Content-Type") == "application/x-ndjson"
        lines = [ln for ln in gzip.decompress(body).split(b"\n") if ln]
        docs = [orjson.loads(ln) for ln in lines]
        with self.lock:
            if self.script:
                code = self.script.pop(0)
            elif self.max_events and len(docs) > self.max_events:
                code = 413
            elif self.reject_marker and any(self.reject_marker in d.get("raw", "") for d in docs):
                code = 400
            else:
                code = 200
            self.requests.append((len(docs), code))
            if code == 400:  # the server's answer to events it refuses (docs/api.md)
                return code, orjson.dumps({"error": self.bad_request_error, "message": "scripted"})
            if code != 200:
                return code, orjson.dumps({"detail": f"scripted {code}"})
            new = 0
            for d in docs:
                self.received += 1
                if d["id"] not in self.stored:
                    self.stored[d["id"]] = d
                    new += 1
            answer = {"accepted": len(docs), "stored": new, "duplicates": len(docs) - new}
            return 200, orjson.dumps(answer)

    def raws(self) -> list[str]:
        with self.lock:
            return [d.get("raw", "") for d in self.stored.values()]


@contextmanager
def serve(stub: IngestStub) -> Iterator[IngestStub]:
    """Run the stub on an ephemeral loopback port for the duration of a ``with`` block."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            code, payload = stub.handle(self.headers, self.rfile.read(length))
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
