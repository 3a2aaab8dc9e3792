"""Storage backends behind one contract (:mod:`.contract`); :func:`open_store` picks one."""

from __future__ import annotations

from pathlib import Path

from keeptrail.store.contract import FilePosition, SearchPage, Stats, Store
from keeptrail.store.sqlite import SQLiteStore

__all__ = ["FilePosition", "SearchPage", "Stats", "Store", "open_store"]


def open_store(
    location: str | Path, *, readonly: bool = False, config_file: Path | None = None
) -> Store:
    """Open the store at a data directory, a ``.db`` file, or a ``sqlite:///`` URL.

    ``config_file`` is ``--config`` (the server's ``Settings.config_file``); without it the
    configuration is ``$KEEPTRAIL_CONFIG`` or ``<data-dir>/keeptrail.toml``.
    """
    text = str(location)
    if text.startswith(("postgresql://", "postgres://")):
        from keeptrail.store.postgres import open_postgres  # noqa: PLC0415  # psycopg on use

        return open_postgres(text, readonly=readonly, config_file=config_file)
    if text.startswith("sqlite:///"):
        text = text[len("sqlite:///") :]
    path = Path(text)
    if path.suffix != ".db":
        path = path / "events.db"
    return _open_sqlite(path, readonly=readonly, config_file=config_file)


def _open_sqlite(path: Path, *, readonly: bool, config_file: Path | None = None) -> SQLiteStore:
    """The embedded store with the data directory's keyring, retention classes and projection.

    Encryption is on unless ``[protect] encrypt = false``. A read-only open never creates a
    keyring: without one, plaintext partitions read as usual and a sealed one is a clear
    error naming it.
    """
    from keeptrail.config import load_config_file  # noqa: PLC0415
    from keeptrail.protect.keyring import KEYRING_FILE, open_keyring  # noqa: PLC0415
    from keeptrail.protect.projection import clear_fields_from_config  # noqa: PLC0415
    from keeptrail.protect.retention import RetentionPolicies  # noqa: PLC0415

    data_dir = path.parent
    config = load_config_file(data_dir, config_file)
    clear = clear_fields_from_config(config)
    classify = RetentionPolicies.from_config(config).classify
    keyring = None
    if not readonly or (data_dir / KEYRING_FILE).exists():
        keyring = open_keyring(data_dir, config, create=not readonly)
    try:
        return SQLiteStore(
            path,
            readonly=readonly,
            keyring=keyring,
            classify=classify,
            clear_fields=clear,
            close_keyring=True,
        )
    except BaseException:
        if keyring is not None:
            keyring.close()
        raise
