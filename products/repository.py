"""Data access of the products service through the document-store port (no rules here).

Collections: ``products``, ``product_history``, ``reservations``, ``seller_status`` (the
contract's) and ``product_terms``, the keyword index behind search: one tiny document per
(word, product) whose ``_id`` is ``"<word> <productId>"``, so a word-prefix lookup is a
primary-key range scan on both adapters. (The SQLite adapter cannot index array elements,
so a keywords array on the product would be scanned.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from shared.store import Document, DocumentStore, DuplicateKeyError, new_id
from shared.timeutil import now_iso

PRODUCT_INDEXES: tuple[Sequence[tuple[str, int]], ...] = (
    [("status", 1), ("sellerActive", 1), ("createdAt", -1)],
    [("status", 1), ("sellerActive", 1), ("category", 1), ("subcategory", 1), ("createdAt", -1)],
    [("status", 1), ("sellerActive", 1), ("category", 1), ("priceCents", 1)],
    [("status", 1), ("sellerActive", 1), ("priceCents", 1)],
    [("status", 1), ("sellerActive", 1), ("name", 1)],
    [("status", 1), ("sellerActive", 1), ("totalSold", -1)],
    [("status", 1), ("sellerActive", 1), ("stock", 1)],
    [("sellerId", 1), ("status", 1), ("createdAt", -1)],
    [("sellerId", 1), ("createdAt", -1)],
    [("sellerId", 1), ("status", 1), ("stockLevel", 1)],
    [("status", 1), ("stockLevel", 1)],
)


class ProductRepository:
    """The products service's collections and the queries it runs on them."""

    def __init__(self, store: DocumentStore) -> None:
        self.products = store.collection("products")
        self.history = store.collection("product_history")
        self.reservations = store.collection("reservations")
        self.seller_status = store.collection("seller_status")
        self.terms = store.collection("product_terms")

    async def create_indexes(self) -> None:
        for spec in PRODUCT_INDEXES:
            await self.products.create_index(spec)
        await self.history.create_index([("productId", 1), ("createdAt", -1)])
        await self.history.create_index([("sellerId", 1), ("type", 1), ("createdAt", -1)])
        await self.history.create_index([("orderId", 1), ("productId", 1), ("type", 1)])
        await self.reservations.create_index("orderId", unique=True)
        await self.reservations.create_index([("status", 1), ("expiresAt", 1)])
        await self.seller_status.create_index("sellerId", unique=True)
        await self.terms.create_index("productId")

    # products

    async def insert_product(self, doc: Document) -> Document:
        await self.products.insert_one(doc)
        return doc

    async def insert_products(self, docs: Sequence[Document]) -> None:
        """Insert many products (bulk loading, e.g. the catalogue benchmark)."""
        await self.products.insert_many(list(docs))

    async def get_product(self, product_id: str) -> Document | None:
        return await self.products.find_one({"_id": product_id})

    async def get_products(self, ids: Sequence[str]) -> list[Document]:
        """Products by id; the filter is on ``_id`` alone so the primary key serves it."""
        if not ids:
            return []
        return await self.products.find({"_id": {"$in": list(ids)}})

    async def update_product(
        self,
        condition: Mapping[str, Any],
        update: Mapping[str, Any],
        *,
        returning: Literal["before", "after"] = "after",
    ) -> Document | None:
        """One conditional atomic update (``updatedAt`` set too); None when nothing matched."""
        update = dict(update)
        update["$set"] = {**update.get("$set", {}), "updatedAt": now_iso()}
        return await self.products.find_one_and_update(dict(condition), update, return_document=returning)

    async def set_stock_level(self, doc: Mapping[str, Any], level: str) -> None:
        """Record ``level`` unless stock or the alert changed since ``doc`` was written."""
        await self.products.update_one(
            {"_id": doc["_id"], "stock": doc["stock"], "lowStockAlert": doc["lowStockAlert"]},
            {"$set": {"stockLevel": level}},
        )

    async def list_products(
        self, query: Mapping[str, Any], *, sort: Sequence[tuple[str, int]], skip: int, limit: int
    ) -> tuple[list[Document], int]:
        # The page and the total are independent reads: run them side by side.
        return await asyncio.gather(
            self.products.find(dict(query), sort=sort, skip=skip, limit=limit), self.products.count(dict(query))
        )

    async def page_by_ids(
        self, query: Mapping[str, Any], *, sort: Sequence[tuple[str, int]], skip: int, limit: int
    ) -> tuple[list[Document], int]:
        """The page and the total from one ids-only pass over the matches, then the page's
        documents by key: for a bounded candidate set (search) this reads each match once
        instead of twice (page query + count)."""
        ids = [d["_id"] for d in await self.products.find(dict(query), sort=sort, projection={"_id": 1})]
        page = ids[skip : skip + limit]
        found = {d["_id"]: d for d in await self.products.find({"_id": {"$in": page}})} if page else {}
        return [found[i] for i in page if i in found], len(ids)

    async def find_products(
        self, query: Mapping[str, Any], *, projection: Mapping[str, int] | None = None
    ) -> list[Document]:
        return await self.products.find(dict(query), projection=projection)

    async def count_products(self, query: Mapping[str, Any]) -> int:
        return await self.products.count(dict(query))

    async def set_seller_active(self, seller_id: str, active: bool) -> int:
        result = await self.products.update_many(
            {"sellerId": seller_id, "sellerActive": {"$ne": active}},
            {"$set": {"sellerActive": active, "updatedAt": now_iso()}},
        )
        return result.modified

    # search terms

    async def replace_terms(self, product_id: str, terms: Iterable[str]) -> None:
        await self.terms.delete_many({"productId": product_id})
        await self.insert_terms({product_id: terms})

    async def insert_terms(self, by_product: Mapping[str, Iterable[str]]) -> None:
        docs = [
            {"_id": f"{term} {product_id}", "productId": product_id}
            for product_id, terms in by_product.items()
            for term in terms
        ]
        if docs:
            await self.terms.insert_many(docs)

    async def products_with_prefix(self, prefix: str, *, limit: int) -> set[str] | None:
        """Ids of products having a word that starts with ``prefix``; None when more than ``limit``."""
        # "<word> <productId>" keys: every word starting with ``prefix`` sorts inside this range.
        rows = await self.terms.find(
            {"_id": {"$gte": prefix, "$lt": prefix + "\U0010ffff"}}, limit=limit + 1, projection={"_id": 1}
        )
        ids = {row["_id"].rsplit(" ", 1)[1] for row in rows}
        return None if len(rows) > limit else ids

    # history

    async def add_history(self, entry: Document) -> Document:
        entry = {"_id": entry.pop("_id", None) or new_id(), **entry, "createdAt": now_iso()}
        await self.history.insert_one(entry)
        return entry

    async def add_history_once(self, entry: Document) -> bool:
        """Insert an entry with a deterministic ``_id``; False when it already exists."""
        try:
            await self.add_history(entry)
        except DuplicateKeyError:
            return False
        return True

    async def list_history(self, query: Mapping[str, Any], *, skip: int, limit: int) -> tuple[list[Document], int]:
        items = await self.history.find(dict(query), sort=[("createdAt", -1), ("_id", -1)], skip=skip, limit=limit)
        return items, await self.history.count(dict(query))

    async def find_history(self, query: Mapping[str, Any]) -> list[Document]:
        return await self.history.find(dict(query), sort=[("createdAt", -1), ("_id", -1)])

    async def update_history(self, entry_id: str, fields: Mapping[str, Any]) -> None:
        await self.history.update_one({"_id": entry_id}, {"$set": dict(fields)})

    # reservations

    async def insert_reservation(self, doc: Document) -> Document:
        """Insert the order's reservation; raises DuplicateKeyError when the order has one."""
        now = now_iso()
        doc = {"_id": new_id(), **doc, "createdAt": now, "updatedAt": now}
        await self.reservations.insert_one(doc)
        return doc

    async def get_reservation(self, order_id: str) -> Document | None:
        return await self.reservations.find_one({"orderId": order_id})

    async def update_reservation(self, condition: Mapping[str, Any], fields: Mapping[str, Any]) -> Document | None:
        """Conditional status change of a reservation; None when ``condition`` no longer holds."""
        return await self.reservations.find_one_and_update(
            dict(condition), {"$set": {**fields, "updatedAt": now_iso()}}
        )

    async def reservations_due(self, *, now: str, limit: int = 100) -> list[Document]:
        """Active (or stale pending) reservations whose ``expiresAt`` has passed."""
        return await self.reservations.find(
            {"status": {"$in": ["active", "pending"]}, "expiresAt": {"$lt": now}},
            sort=[("expiresAt", 1)],
            limit=limit,
        )

    async def reservations_unsettled(self, *, limit: int = 100) -> list[Document]:
        """Finished reservations whose product lines were not all processed (an interrupted run)."""
        return await self.reservations.find(
            {"status": {"$in": ["confirmed", "cancelled", "expired", "failed"]}, "settled": False}, limit=limit
        )

    # seller status

    async def get_seller_status(self, seller_id: str) -> Document | None:
        return await self.seller_status.find_one({"sellerId": seller_id})

    async def set_seller_status(self, seller_id: str, active: bool) -> None:
        await self.seller_status.update_one(
            {"sellerId": seller_id},
            {"$set": {"isActive": active, "updatedAt": now_iso()}, "$setOnInsert": {"_id": new_id()}},
            upsert=True,
        )
