"""MongoDB adapter: a thin pass-through to pymongo's ``AsyncMongoClient``.

Everything is validated against the supported subset first (``shared.store.query``), so
the same calls fail the same way on every adapter; driver errors become store errors.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Literal

from pymongo import AsyncMongoClient, ReturnDocument, errors
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from shared.store.base import (
    Collection,
    Document,
    DocumentStore,
    DuplicateKeyError,
    Filter,
    IndexSpec,
    SortSpec,
    StoreError,
    StoreUnavailable,
    StoreValueError,
    UnsupportedQuery,
    Update,
    UpdateResult,
    new_id,
)
from shared.store.query import (
    check_collection_name,
    normalize_index,
    prepare_document,
    validate_filter,
    validate_projection,
    validate_sort,
    validate_update,
    validate_window,
)

__all__ = ["MongoCollection", "MongoStore"]

# BadValue, TypeMismatch, PathNotViable: an update that does not fit the stored document.
_BAD_UPDATE_CODES = frozenset({2, 14, 28})


def _key(details: Mapping[str, Any] | None) -> str | None:
    return ",".join((details or {}).get("keyPattern") or {}) or None


def _translate(exc: errors.PyMongoError) -> StoreError:
    if isinstance(exc, errors.DuplicateKeyError):
        return DuplicateKeyError(str(exc), key=_key(exc.details))
    if isinstance(exc, errors.BulkWriteError):
        first = (exc.details.get("writeErrors") or [{}])[0]
        if first.get("code") == 11000:
            return DuplicateKeyError(first.get("errmsg", str(exc)), key=_key(first))
    if isinstance(exc, errors.ConnectionFailure):  # includes ServerSelectionTimeoutError
        return StoreUnavailable(str(exc))
    if isinstance(exc, errors.OperationFailure) and "Failed to apply $inc" in str(exc):
        return StoreValueError(str(exc), where="$inc")  # an int64 overflow, as the SQLite adapter refuses
    if isinstance(exc, errors.OperationFailure) and exc.code in _BAD_UPDATE_CODES:
        return UnsupportedQuery(str(exc))
    return StoreError(str(exc))


@contextmanager
def _driver_errors() -> Iterator[None]:
    try:
        yield
    except errors.PyMongoError as exc:
        raise _translate(exc) from exc


def _string_id_upsert(filter: Filter, update: Update) -> Update:
    """``update`` plus a string ``_id`` on insert, unless the filter pins ``_id`` by equality."""
    pinned = filter.get("_id")
    if isinstance(pinned, Mapping):
        pinned = pinned.get("$eq")
    on_insert = update.get("$setOnInsert", {})
    if isinstance(pinned, str) or "_id" in on_insert:
        return update
    return {**update, "$setOnInsert": {**on_insert, "_id": new_id()}}


class MongoStore(DocumentStore):
    """A document store in one MongoDB database. The client is created on first use."""

    def __init__(self, uri: str, database: str) -> None:
        self._uri = uri
        self._database = database
        self._client: AsyncMongoClient[Document] | None = None

    @property
    def db(self) -> AsyncDatabase[Document]:
        """The database handle (creates the client, which connects lazily)."""
        if self._client is None:
            # Fail fast (not the driver's 30 s) when the server is down, unless the URI says otherwise.
            options = {} if "serverselectiontimeoutms" in self._uri.lower() else {"serverSelectionTimeoutMS": 5000}
            self._client = AsyncMongoClient(self._uri, **options)
        return self._client[self._database]

    def collection(self, name: str) -> MongoCollection:
        """The collection called ``name`` (MongoDB creates it on first write)."""
        return MongoCollection(self, check_collection_name(name))

    async def connect(self) -> None:
        """Create the client; the driver opens connections on demand."""
        _ = self.db

    async def close(self) -> None:
        """Close the client; a later call creates a new one."""
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def ping(self) -> bool:
        """True when the server answers ``ping`` within two seconds."""
        try:
            await asyncio.wait_for(self.db.command("ping"), timeout=2)
        except (errors.PyMongoError, TimeoutError):
            return False
        return True


class MongoCollection(Collection):
    """One MongoDB collection behind the port."""

    def __init__(self, store: MongoStore, name: str) -> None:
        self._store = store
        self.name = name

    @property
    def _c(self) -> AsyncCollection[Document]:
        return self._store.db[self.name]

    async def insert_one(self, doc: Document) -> str:
        """Insert ``doc`` (an ``_id`` is generated when absent) and return its ``_id``."""
        doc = prepare_document(doc)
        with _driver_errors():
            await self._c.insert_one(doc)
        return doc["_id"]

    async def insert_many(self, docs: Sequence[Document]) -> list[str]:
        """Insert all ``docs``, all or none: on a failure the ones already written are deleted."""
        prepared = [prepare_document(doc) for doc in docs]
        if not prepared:
            return []
        with _driver_errors():
            try:
                await self._c.insert_many(prepared, ordered=True)
            except errors.BulkWriteError as exc:
                # No multi-document atomicity without a transaction (replica sets only):
                # an ordered insert wrote exactly the first nInserted documents, so undo those.
                written = [doc["_id"] for doc in prepared[: exc.details.get("nInserted", 0)]]
                if written:
                    await self._c.delete_many({"_id": {"$in": written}})
                raise
        return [doc["_id"] for doc in prepared]

    async def find(
        self,
        filter: Filter | None = None,
        *,
        sort: SortSpec | None = None,
        skip: int = 0,
        limit: int = 0,
        projection: Mapping[str, int] | None = None,
    ) -> list[Document]:
        """Matching documents; ``limit=0`` means no limit."""
        validate_filter(filter)
        validate_sort(sort)
        validate_window(skip, limit)
        validate_projection(projection)
        cursor = self._c.find(
            filter or {}, projection or None, sort=list(sort) if sort else None, skip=skip, limit=limit
        )
        with _driver_errors():
            return await cursor.to_list()

    async def count(self, filter: Filter | None = None) -> int:
        """How many documents match."""
        validate_filter(filter)
        with _driver_errors():
            return await self._c.count_documents(filter or {})

    async def update_one(self, filter: Filter, update: Update, *, upsert: bool = False) -> UpdateResult:
        """Apply ``update`` to the first match, inserting when ``upsert`` and none."""
        validate_filter(filter)
        validate_update(update)
        if upsert:
            update = _string_id_upsert(filter, update)
        with _driver_errors():
            result = await self._c.update_one(filter, update, upsert=upsert)
        return UpdateResult(result.matched_count, result.modified_count, result.upserted_id)

    async def update_many(self, filter: Filter, update: Update) -> UpdateResult:
        """Apply ``update`` to every match."""
        validate_filter(filter)
        validate_update(update)
        with _driver_errors():
            result = await self._c.update_many(filter, update)
        return UpdateResult(result.matched_count, result.modified_count)

    async def find_one_and_update(
        self,
        filter: Filter,
        update: Update,
        *,
        return_document: Literal["before", "after"] = "after",
        upsert: bool = False,
        sort: SortSpec | None = None,
        projection: Mapping[str, int] | None = None,
    ) -> Document | None:
        """Atomically update the first match and return it as it was ``before`` or is ``after``."""
        if return_document not in ("before", "after"):
            raise UnsupportedQuery("return_document is 'before' or 'after'")
        validate_filter(filter)
        validate_update(update)
        validate_sort(sort)
        validate_projection(projection)
        if upsert:
            update = _string_id_upsert(filter, update)
        with _driver_errors():
            return await self._c.find_one_and_update(
                filter,
                update,
                projection=projection or None,
                sort=list(sort) if sort else None,
                upsert=upsert,
                return_document=ReturnDocument.AFTER if return_document == "after" else ReturnDocument.BEFORE,
            )

    async def delete_one(self, filter: Filter) -> int:
        """Delete the first match; return 1 or 0."""
        validate_filter(filter)
        with _driver_errors():
            return (await self._c.delete_one(filter)).deleted_count

    async def delete_many(self, filter: Filter) -> int:
        """Delete every match; return how many."""
        validate_filter(filter)
        with _driver_errors():
            return (await self._c.delete_many(filter)).deleted_count

    async def create_index(self, fields: IndexSpec, *, unique: bool = False, name: str | None = None) -> None:
        """Create an index (idempotent); a unique one only covers documents having every field."""
        spec = normalize_index(fields)
        if [path for path, _ in spec] == ["_id"]:
            return
        options: dict[str, Any] = {"name": name} if name else {}
        if unique:
            options.update(unique=True, partialFilterExpression={path: {"$exists": True} for path, _ in spec})
        with _driver_errors():
            await self._c.create_index(spec, **options)
