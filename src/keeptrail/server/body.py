"""Reading an ingest body safely: size caps before and after gzip, then JSON or JSON lines.

Three limits, each a clear 413: the bytes on the wire (``Content-Length`` is checked before
anything is read, and a chunked body is counted as it streams), the bytes after
decompression (inflated incrementally with a cap, so a gzip bomb stops at the limit instead of
filling memory), and the number of events in one batch.
"""

from __future__ import annotations

import zlib
from typing import Any, Final

import orjson
from starlette.requests import Request

from keeptrail.server.errors import ApiError

JSON_TYPES: Final = frozenset({"application/json"})
LINES_TYPES: Final = frozenset(
    {"application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonl"}
)
_GZIP_WBITS: Final = 16 + zlib.MAX_WBITS


def _too_large(what: str, limit: int) -> ApiError:
    return ApiError(
        413, "too_large", f"{what} is larger than the limit of {limit} bytes", limit=limit
    )


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The raw body, refusing more than ``max_bytes`` (declared or actual)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ApiError(400, "invalid_request", "Content-Length is not a number")
        if int(declared) > max_bytes:
            raise _too_large("the request body", max_bytes)
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > max_bytes:
            raise _too_large("the request body", max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


def decode_content(data: bytes, encoding: str | None, max_bytes: int) -> bytes:
    """The body after ``Content-Encoding`` (identity or gzip), at most ``max_bytes`` of it."""
    name = (encoding or "identity").strip().lower()
    if name == "identity":
        return data
    if name not in {"gzip", "x-gzip"}:
        raise ApiError(
            415,
            "unsupported_encoding",
            f"Content-Encoding {name!r} is not supported; use gzip or none",
        )
    out = bytearray()
    pending = data
    while pending:
        inflater = zlib.decompressobj(_GZIP_WBITS)
        try:
            while pending:
                out += inflater.decompress(pending, max_bytes + 1 - len(out))
                if len(out) > max_bytes:
                    raise _too_large("the decompressed request body", max_bytes)
                pending = inflater.unconsumed_tail
            out += inflater.flush()
        except zlib.error as exc:
            raise ApiError(400, "malformed_body", f"the gzip body is corrupt: {exc}") from None
        if len(out) > max_bytes:
            raise _too_large("the decompressed request body", max_bytes)
        if not inflater.eof:
            raise ApiError(400, "malformed_body", "the gzip body is truncated")
        pending = inflater.unused_data  # another gzip member follows (concatenated files)
    return bytes(out)


def parse_documents(data: bytes, content_type: str | None, max_events: int) -> list[Any]:
    """The documents of a JSON array or JSON lines body (blank lines are skipped)."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media in JSON_TYPES:
        try:
            docs = orjson.loads(data) if data.strip() else None
        except orjson.JSONDecodeError as exc:
            raise ApiError(400, "malformed_json", f"the body is not valid JSON: {exc}") from None
        if type(docs) is not list:
            raise ApiError(
                400, "malformed_json", "the body must be a JSON array of event documents"
            )
        if len(docs) > max_events:
            raise _too_many(max_events)
        return docs
    if media in LINES_TYPES:
        docs = []
        for number, line in enumerate(data.split(b"\n"), start=1):
            if not line.strip():
                continue
            if len(docs) >= max_events:
                raise _too_many(max_events)
            try:
                docs.append(orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                raise ApiError(
                    400, "malformed_json", f"line {number} is not valid JSON: {exc}", line=number
                ) from None
        return docs
    raise ApiError(
        415,
        "unsupported_media_type",
        "Content-Type must be application/json (an array) or application/x-ndjson (JSON lines)",
    )


def _too_many(limit: int) -> ApiError:
    return ApiError(
        413, "too_many_events", f"a batch holds at most {limit} events; split it", limit=limit
    )
