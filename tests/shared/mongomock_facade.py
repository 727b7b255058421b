"""A *semantics check*, not a MongoDB server: pymongo's async client API over ``mongomock``.

No MongoDB server can be installed on the CI machines, so the store contract suite's
MongoDB leg also runs against this facade (``store`` fixture, param ``mongomock-semantics``):
``shared.store.mongo`` runs unchanged, line for line, with ``AsyncMongoClient`` swapped for
:class:`MongomockAsyncClient`. It checks the adapter's own code (validation, id handling,
error translation, the calls it makes) and mongomock's reading of MongoDB's semantics; it
says nothing about the wire protocol, server versions, timeouts or concurrency. The
real-server leg (``MONGODB_URI`` set) remains the authority.

The facade is deliberately thin: each coroutine calls mongomock synchronously (so each
operation is atomic with respect to the event loop), and clients opened with the same URI
share one in-memory server, as connections to one server do. ``down = True`` on the
client class makes every call fail as an unreachable server does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mongomock
import mongomock.store
from pymongo import errors


class _Server:
    """Shared state per URI: mongomock's in-memory server store."""

    stores: dict[str, mongomock.store.ServerStore] = {}


def _reachable() -> None:
    if MongomockAsyncClient.down:
        raise errors.ServerSelectionTimeoutError("mongomock facade: server marked down")


def _async(call: Callable[..., Any]) -> Callable[..., Any]:
    async def run(*args: Any, **kwargs: Any) -> Any:
        _reachable()
        return call(*args, **kwargs)

    return run


class _Cursor:
    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    async def to_list(self, length: int | None = None) -> list[dict[str, Any]]:
        _reachable()
        return list(self._cursor)


class _Collection:
    _METHODS = (
        "insert_one",
        "insert_many",
        "count_documents",
        "update_one",
        "update_many",
        "find_one_and_update",
        "delete_one",
        "delete_many",
        "create_index",
    )

    def __init__(self, collection: Any) -> None:
        self._collection = collection
        for name in self._METHODS:
            setattr(self, name, _async(getattr(collection, name)))

    def find(self, *args: Any, **kwargs: Any) -> _Cursor:
        # pymongo builds the cursor lazily; mongomock's find is lazy too.
        return _Cursor(self._collection.find(*args, **kwargs))


class _Database:
    def __init__(self, client: MongomockAsyncClient, database: Any) -> None:
        self.client = client
        self.name = database.name
        self._database = database
        self.command = _async(database.command)

    def __getitem__(self, name: str) -> _Collection:
        return _Collection(self._database[name])


class MongomockAsyncClient:
    """``AsyncMongoClient(uri, **options)`` as far as ``shared.store.mongo`` uses it."""

    down = False

    def __init__(self, uri: str, **options: Any) -> None:
        store = _Server.stores.setdefault(uri, mongomock.store.ServerStore())
        self._client = mongomock.MongoClient(_store=store)
        self.options = options

    def __getitem__(self, name: str) -> _Database:
        return _Database(self, self._client[name])

    async def drop_database(self, name: str) -> None:
        self._client.drop_database(name)

    async def close(self) -> None:
        self._client.close()
