"""The document-store port and its adapters (SQLite by default, MongoDB when configured)."""

from __future__ import annotations

from pathlib import Path

from shared.store.base import (
    Collection,
    Document,
    DocumentStore,
    DuplicateKeyError,
    StoreError,
    StoreUnavailable,
    StoreValueError,
    UnsupportedQuery,
    UpdateResult,
    is_object_id,
    new_id,
    stamped_update,
)

__all__ = [
    "Collection",
    "Document",
    "DocumentStore",
    "DuplicateKeyError",
    "StoreError",
    "StoreUnavailable",
    "StoreValueError",
    "UnsupportedQuery",
    "UpdateResult",
    "is_object_id",
    "new_id",
    "open_store",
    "stamped_update",
]


def open_store(*, mongodb_uri: str | None, data_dir: str | Path, database: str) -> DocumentStore:
    """The store a service runs on: MongoDB when ``mongodb_uri`` is set, else a SQLite file
    ``<data_dir>/<database>.sqlite3``. Call ``await store.connect()`` before use."""
    if mongodb_uri:
        from shared.store.mongo import MongoStore

        return MongoStore(mongodb_uri, database)
    from shared.store.sqlite import SqliteStore

    return SqliteStore(Path(data_dir) / f"{database}.sqlite3")
