"""Permission audits: entitlement snapshots collected from systems, stored with their history.

``model`` holds the types every collector returns, ``collectors/`` one module per system,
``snapshots`` the SQLite store that keeps them over time, ``collect`` the entry point the CLI
and the agent call.
"""

from keeptrail.permissions.model import Account, Entitlement, Snapshot, entitlement_key

__all__ = ["Account", "Entitlement", "Snapshot", "entitlement_key"]
