"""Wrapping data keys under master key versions: the one implementation both keyrings share.

The SQLite keyring (``keyring.db``) and the PostgreSQL one (``data_keys`` in the database) store
their rows differently, but opening a wrapped key, wrapping it again under a new master key
version and checking that a process holds the right master key must be the same code: a
rotation on either backend then fails, and succeeds, in the same way and with the same words.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from keeptrail.errors import UserError
from keeptrail.protect.kek import KEY_BYTES, Providers, UnwrapFailed, context_for


class KeyUnavailable(UserError):
    """A partition's data key cannot be had; the message names the partition and why."""

    def __init__(self, partition: str, reason: str) -> None:
        super().__init__(f"cannot decrypt partition {partition}: {reason}")
        self.partition = partition
        self.reason = reason


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """A live data key row as either keyring stores it."""

    partition: str
    version: int
    provider: str
    wrapped: bytes


def check_context(version: int) -> str:
    """The context of the check value stored with each master key version."""
    return f"keeptrail-master-key-check:v{version}"


def make_check(providers: Providers, name: str, version: int) -> bytes:
    """A random key wrapped under master key ``version``: later proof that a process has it."""
    return providers.get(name).wrap(version, os.urandom(KEY_BYTES), check_context(version))


def holds_version(providers: Providers, name: str, version: int, check: bytes | None) -> bool:
    """Whether this process's master key ``version`` opens the recorded check value.

    ``False`` when it does not (another key under the same version number). A missing key
    raises the provider's own :class:`UserError` (which names the file or variable to restore).
    No recorded check (a version made before check values existed) cannot be refuted: ``True``.
    """
    if check is None:
        return True
    try:
        providers.get(name).unwrap(version, check, check_context(version))
    except UnwrapFailed:
        return False
    return True


def unwrap_key(
    providers: Providers,
    partition: str,
    version: int,
    name: str,
    wrapped: bytes,
) -> bytes:
    """Open a wrapped data key; any failure is :class:`KeyUnavailable`, one clear line."""
    try:
        key = providers.get(name).unwrap(version, wrapped, context_for(partition, version))
    except UnwrapFailed as exc:
        detail = str(exc)
        why = f" ({detail})" if detail.startswith("kek_command") else ""
        raise KeyUnavailable(
            partition, f"the master key v{version} does not open it (wrong key?){why}"
        ) from None
    except KeyUnavailable:
        raise
    except UserError as exc:  # a missing key file or variable, an unknown provider
        raise KeyUnavailable(partition, str(exc)) from None
    if len(key) != KEY_BYTES:
        raise KeyUnavailable(partition, f"master key v{version} unwrapped a malformed key")
    return key


def wrap_key(providers: Providers, partition: str, version: int, name: str, key: bytes) -> bytes:
    """``key`` wrapped under master key ``version`` of provider ``name``, bound to its partition."""
    return providers.get(name).wrap(version, key, context_for(partition, version))


def rewrap(
    rows: Iterable[WrappedKey],
    providers: Providers,
    *,
    version: int,
    name: str,
    cache: Mapping[str, bytes],
) -> list[tuple[str, bytes]]:
    """Every row's data key wrapped under master key ``version``: ``(partition, wrapped)``.

    The heart of a rotation. Keys already unwrapped in ``cache`` are not unwrapped again (a
    ``kek_command`` then runs once per key, not twice). The first key that does not open raises,
    naming its partition, before anything is written by the caller.
    """
    out: list[tuple[str, bytes]] = []
    for row in rows:
        key = cache.get(row.partition) or unwrap_key(
            providers, row.partition, row.version, row.provider, row.wrapped
        )
        out.append((row.partition, wrap_key(providers, row.partition, version, name, key)))
    return out
