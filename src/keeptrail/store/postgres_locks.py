"""Every PostgreSQL advisory lock Keeptrail takes, in one place so that two never share an id.

An advisory lock id is a bare number: two jobs that picked the same one would wait on each other
(or, worse, one would believe it holds the other's role). The high half spells "kt".
"""

from __future__ import annotations

from typing import Final

MIGRATIONS: Final = 0x6B74_0001
"""Transaction lock: one server at a time applies schema migrations."""
INTEGRATOR: Final = 0x6B74_0002
"""Session lock: the one integrator that sequences the ledger."""
MASTER_KEYS: Final = 0x6B74_0003
"""Transaction lock: exclusive to create or rotate master keys, shared to add a data key."""
DETECT: Final = 0x6B74_0004
"""Session lock: the one server that runs the rules engine."""
NOTIFY: Final = 0x6B74_0005
"""Session lock: the one server that delivers notifications."""
