"""Delivering alerts: signed webhooks, apprise (chat, email), syslog/CEF — from a durable outbox.

``config`` parses ``[notify]``; ``payload`` is the one JSON document every sink is built from;
``webhook``, ``apprise_sink`` and ``syslog_cef`` each send one delivery and raise
:class:`~keeptrail.notify.payload.DeliveryError` when it did not arrive; ``outbox`` keeps every
pending delivery in ``<data-dir>/notify.db`` so retries survive a restart; ``dispatcher`` ties
them to the detection engine (``engine.add_listener``) and retries with exponential backoff.
A delivery that fails for good is counted in the metrics and recorded as an
``alert.delivery_failed`` event: never silent.
"""
