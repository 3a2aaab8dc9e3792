"""Chat and email through apprise URLs (Slack, Teams, Matrix, Telegram, mailto://, json:// ...).

apprise turns one URL per service into a notification; it reports success as a boolean and
logs the why, so a failed send here is a retryable :class:`DeliveryError` whose message names
the sink, never the URL (URLs usually carry tokens).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import apprise

from keeptrail.notify.payload import DeliveryError, body_text, headline

_LEVELS = {
    "critical": apprise.NotifyType.FAILURE,
    "high": apprise.NotifyType.FAILURE,
    "medium": apprise.NotifyType.WARNING,
}


def send(urls: Sequence[str], doc: dict[str, Any]) -> None:
    """Notify every URL; DeliveryError if any of them failed."""
    notifier = apprise.Apprise()
    for url in urls:
        if not notifier.add(url):
            raise DeliveryError("an apprise URL is not valid (check its scheme)", retry=False)
    kind = _LEVELS.get(doc["alert"]["severity"], apprise.NotifyType.INFO)
    logging.getLogger("apprise").setLevel(logging.CRITICAL)  # its messages may quote URLs
    ok = notifier.notify(title=headline(doc), body=body_text(doc), notify_type=kind)
    if not ok:
        raise DeliveryError("apprise could not deliver to every URL")
