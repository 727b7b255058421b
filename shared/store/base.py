"""The document-store port: the only way the document services reach their data.

It speaks a small, explicit subset of MongoDB's query language (ARCHITECTURE.md "Data"),
so the MongoDB adapter is a thin pass-through and the SQLite adapter a faithful
translation. Anything outside the subset raises :class:`UnsupportedQuery` at once.

Conventions shared by every adapter:

* ``_id`` is a 24-hex ObjectId *string* (see :func:`new_id`); references to other
  documents are strings too. Adapters never hand back ``bson.ObjectId`` objects.
* Documents hold JSON values only (str, int, float, bool, None, list, dict). Times are
  stored as ISO-8601 UTC strings of fixed width (``shared.timeutil.iso``), which compare
  correctly as strings in both adapters. Money is stored as integer cents.
* Sort specs are lists of ``(field, 1 | -1)``; index specs the same (or a bare field name).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from bson import ObjectId

from shared.timeutil import now_iso

Document = dict[str, Any]
Filter = Mapping[str, Any]
Update = Mapping[str, Any]
SortSpec = Sequence[tuple[str, int]]
IndexSpec = str | Sequence[tuple[str, int]]

FILTER_OPERATORS = frozenset(
    {"$in", "$nin", "$ne", "$gt", "$gte", "$lt", "$lte", "$exists", "$regex", "$options", "$eq"}
)
LOGICAL_OPERATORS = frozenset({"$and", "$or"})
UPDATE_OPERATORS = frozenset({"$set", "$unset", "$inc", "$push", "$pull", "$setOnInsert"})

_OBJECT_ID = re.compile(r"[0-9a-fA-F]{24}")  # whole string: fullmatch (``$`` lets "...\n" through)
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class StoreError(Exception):
    """Base class of every error the store port raises."""


class DuplicateKeyError(StoreError):
    """A write would violate a unique index. ``key`` names the indexed field(s) when known."""

    def __init__(self, message: str = "duplicate key", *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class UnsupportedQuery(StoreError):
    """A filter, update, sort or projection uses something outside the supported subset."""


class StoreValueError(UnsupportedQuery):
    """A value no document can hold, typically from a client's input: an integer outside
    signed 64 bits (also as ``skip``/``limit`` or as the result of ``$inc``), a number that
    is not finite, a string or field name with a lone surrogate (not encodable as UTF-8),
    a field name starting with ``$`` or containing ``.``. Raised before anything is written;
    services answer it 400 "Invalid value" (``shared.responses``). ``where`` says which
    value (``"document"``, ``"filter on 'email'"``, ...)."""

    def __init__(self, message: str, *, where: str | None = None) -> None:
        super().__init__(message)
        self.where = where


class StoreUnavailable(StoreError):
    """The backing database cannot be reached."""


@dataclass(frozen=True, slots=True)
class UpdateResult:
    """What an update did: documents matched, documents changed, and an upserted id if any."""

    matched: int
    modified: int
    upserted_id: str | None = None


def new_id() -> str:
    """A new 24-hex ObjectId string, the id format of every document-store entity."""
    return str(ObjectId())


def stamped_update(
    *,
    set_fields: Mapping[str, Any] | None = None,
    unset: Sequence[str] = (),
    inc: Mapping[str, int | float] | None = None,
) -> dict[str, Any]:
    """An update document that also sets ``updatedAt`` to now (``$set``/``$unset``/``$inc``)."""
    update: dict[str, Any] = {"$set": {**(set_fields or {}), "updatedAt": now_iso()}}
    if unset:
        update["$unset"] = {field: "" for field in unset}
    if inc:
        update["$inc"] = dict(inc)
    return update


def is_object_id(value: object) -> bool:
    """True when ``value`` is a 24-hex ObjectId string."""
    return isinstance(value, str) and _OBJECT_ID.fullmatch(value) is not None


class Collection(ABC):
    """One collection of JSON documents. Every method is a coroutine."""

    name: str

    @abstractmethod
    async def insert_one(self, doc: Document) -> str:
        """Insert ``doc`` (an ``_id`` is generated when absent) and return its ``_id``.

        Raises :class:`DuplicateKeyError` when a unique index rejects it.
        """

    @abstractmethod
    async def insert_many(self, docs: Sequence[Document]) -> list[str]:
        """Insert all ``docs`` atomically (all or none) and return their ids."""

    async def find_one(
        self, filter: Filter, *, projection: Mapping[str, int] | None = None, sort: SortSpec | None = None
    ) -> Document | None:
        """The first matching document (after ``sort``), or None: :meth:`find` with ``limit=1``."""
        found = await self.find(filter, sort=sort, limit=1, projection=projection)
        return found[0] if found else None

    @abstractmethod
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

    @abstractmethod
    async def count(self, filter: Filter | None = None) -> int:
        """How many documents match."""

    @abstractmethod
    async def update_one(self, filter: Filter, update: Update, *, upsert: bool = False) -> UpdateResult:
        """Apply ``update`` to the first match (atomically), inserting when ``upsert`` and none."""

    @abstractmethod
    async def update_many(self, filter: Filter, update: Update) -> UpdateResult:
        """Apply ``update`` to every match."""

    @abstractmethod
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
        """Atomically update the first match and return it as it was ``before`` or is ``after``.

        None when nothing matched (and no upsert). This is the primitive for every
        conditional change (stock, counters, claims): the filter is the condition.
        """

    @abstractmethod
    async def delete_one(self, filter: Filter) -> int:
        """Delete the first match; return 1 or 0."""

    @abstractmethod
    async def delete_many(self, filter: Filter) -> int:
        """Delete every match; return how many."""

    @abstractmethod
    async def create_index(self, fields: IndexSpec, *, unique: bool = False, name: str | None = None) -> None:
        """Create an index (idempotent). Unique indexes only constrain documents having the field."""


class DocumentStore(ABC):
    """A database of collections. Build one with :func:`shared.store.open_store`."""

    @abstractmethod
    def collection(self, name: str) -> Collection:
        """The collection called ``name`` (created on first use)."""

    @abstractmethod
    async def connect(self) -> None:
        """Open connections / files. Called once in the app's lifespan."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections."""

    @abstractmethod
    async def ping(self) -> bool:
        """True when the store answers; used by ``/health``."""
