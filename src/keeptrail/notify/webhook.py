"""HMAC-SHA256-signed JSON webhooks, and the check a receiver runs.

Each request carries::

    X-Keeptrail-Timestamp: 1732615200            (Unix seconds when it was signed)
    X-Keeptrail-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>
    X-Keeptrail-Delivery: <delivery id>           (the same on every retry: deduplicate on it)

Signing the timestamp with the body lets a receiver refuse replays: a captured request is
valid only within its tolerance (5 minutes by default) and only with its own body.
:func:`verify` is the receiver's side, in a dozen lines that can be copied (docs/detect.md).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Final

import httpx

from keeptrail import __version__
from keeptrail.notify.payload import DeliveryError

SIGNATURE_HEADER: Final = "X-Keeptrail-Signature"
TIMESTAMP_HEADER: Final = "X-Keeptrail-Timestamp"
DELIVERY_HEADER: Final = "X-Keeptrail-Delivery"
DEFAULT_TOLERANCE: Final = 300


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    """``sha256=<hex>`` over ``<timestamp>.<body>``."""
    mac = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def signed_headers(
    secret: bytes, body: bytes, delivery_id: str, now: int | None = None
) -> dict[str, str]:
    """The headers of one signed request."""
    timestamp = int(time.time()) if now is None else now
    return {
        "Content-Type": "application/json",
        "User-Agent": f"keeptrail/{__version__}",
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, body),
        DELIVERY_HEADER: delivery_id,
    }


def verify(
    secret: bytes,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: int | None = None,
    tolerance: int = DEFAULT_TOLERANCE,
) -> bool:
    """A receiver's check: the signature matches and the timestamp is recent.

    ``headers`` must be case-insensitive or use the exact names above.
    """
    stamp = headers.get(TIMESTAMP_HEADER) or headers.get(TIMESTAMP_HEADER.lower())
    given = headers.get(SIGNATURE_HEADER) or headers.get(SIGNATURE_HEADER.lower())
    if not stamp or not given or not stamp.isdigit():
        return False
    current = int(time.time()) if now is None else now
    if abs(current - int(stamp)) > tolerance:
        return False
    return hmac.compare_digest(signature(secret, int(stamp), body), given)


def post(
    client: httpx.Client, url: str, secret: bytes, body: bytes, delivery_id: str, timeout: float
) -> None:
    """Send one signed request; DeliveryError unless the receiver answers 2xx.

    4xx other than 408/429 are not retried (the receiver refuses this delivery as it is);
    connection errors, timeouts and 5xx are.
    """
    try:
        response = client.post(
            url, content=body, headers=signed_headers(secret, body, delivery_id), timeout=timeout
        )
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}") from None
    if 200 <= response.status_code < 300:
        return
    retry = response.status_code >= 500 or response.status_code in (408, 429)
    raise DeliveryError(f"HTTP {response.status_code}", retry=retry)
