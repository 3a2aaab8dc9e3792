"""Protection of stored events: encryption at rest, key management, retention, legal holds.

- :mod:`.kek` — master key providers (file, environment, external command) and key wrapping;
- :mod:`.keyring` — one data key per partition, wrapped by a versioned master key, kept in
  ``<data-dir>/keyring.db`` apart from the events; rotation and crypto-shredding;
- :mod:`.seal` and :mod:`.projection` — sealing one event, and which fields stay in clear;
- :mod:`.retention`, :mod:`.holds` and the purge planning beside them — what leaves, and when.

docs/protect.md describes the design and what to back up.
"""
