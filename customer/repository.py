"""Data access of the customer service through the document-store port (no rules here)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from shared.accounts import RefreshTokens
from shared.store import Document, DocumentStore, new_id, stamped_update
from shared.timeutil import now_iso


class CustomerRepository:
    """The collections ``customers``, ``addresses``, ``refresh_tokens``, ``order_stats_applied``."""

    def __init__(self, store: DocumentStore) -> None:
        self.customers = store.collection("customers")
        self.addresses = store.collection("addresses")
        self.refresh_tokens = RefreshTokens(store.collection("refresh_tokens"))
        self.order_stats = store.collection("order_stats_applied")

    async def create_indexes(self) -> None:
        await self.customers.create_index("email", unique=True)
        for field in ("createdAt", "isActive", "phone", "emailVerificationTokenHash", "passwordResetTokenHash"):
            await self.customers.create_index(field)
        await self.addresses.create_index([("customerId", 1), ("isActive", 1)])
        await self.addresses.create_index([("customerId", 1), ("updatedAt", -1)])
        await self.refresh_tokens.create_indexes()
        await self.order_stats.create_index("orderId", unique=True)

    # customers

    async def insert_customer(self, doc: Document) -> Document:
        now = now_iso()
        doc = {"_id": new_id(), **doc, "createdAt": now, "updatedAt": now}
        await self.customers.insert_one(doc)
        return doc

    async def get_customer(self, customer_id: str) -> Document | None:
        return await self.customers.find_one({"_id": customer_id})

    async def get_by_email(self, email: str) -> Document | None:
        return await self.customers.find_one({"email": email})

    async def get_customers(self, ids: Sequence[str], *, active_only: bool) -> list[Document]:
        query: dict[str, Any] = {"_id": {"$in": list(ids)}}
        if active_only:
            query["isActive"] = True
        return await self.customers.find(query)

    async def update_customer(
        self,
        condition: Mapping[str, Any],
        *,
        set_fields: Mapping[str, Any] | None = None,
        unset: Sequence[str] = (),
        inc: Mapping[str, int] | None = None,
        returning: Literal["before", "after"] = "after",
    ) -> Document | None:
        """One conditional atomic update; None when ``condition`` matched nothing."""
        update = stamped_update(set_fields=set_fields, unset=unset, inc=inc)
        return await self.customers.find_one_and_update(dict(condition), update, return_document=returning)

    async def list_customers(
        self, query: Mapping[str, Any], *, sort: Sequence[tuple[str, int]], skip: int, limit: int
    ) -> tuple[list[Document], int]:
        items = await self.customers.find(dict(query), sort=sort, skip=skip, limit=limit)
        return items, await self.customers.count(dict(query))

    async def count_customers(self, query: Mapping[str, Any]) -> int:
        return await self.customers.count(dict(query))

    # addresses

    async def insert_address(self, doc: Document) -> Document:
        now = now_iso()
        doc = {"_id": new_id(), **doc, "isActive": True, "deletedAt": None, "createdAt": now, "updatedAt": now}
        await self.addresses.insert_one(doc)
        return doc

    async def get_address(self, customer_id: str, address_id: str) -> Document | None:
        return await self.addresses.find_one({"_id": address_id, "customerId": customer_id, "isActive": True})

    async def list_addresses(self, customer_id: str) -> list[Document]:
        return await self.addresses.find({"customerId": customer_id, "isActive": True}, sort=[("createdAt", -1)])

    async def update_address(
        self, customer_id: str, address_id: str, *, set_fields: Mapping[str, Any]
    ) -> Document | None:
        return await self.addresses.find_one_and_update(
            {"_id": address_id, "customerId": customer_id, "isActive": True},
            {"$set": {**set_fields, "updatedAt": now_iso()}},
        )

    async def newest_active_address(self, customer_id: str) -> Document | None:
        """The active address updated most recently (ties: newest created, then largest id)."""
        return await self.addresses.find_one(
            {"customerId": customer_id, "isActive": True},
            sort=[("updatedAt", -1), ("createdAt", -1), ("_id", -1)],
        )

    # order statistics

    async def mark_order_applied(self, *, order_id: str, customer_id: str, cents: int) -> None:
        """Insert the idempotency marker; raises DuplicateKeyError when already applied."""
        await self.order_stats.insert_one(
            {
                "_id": new_id(),
                "orderId": order_id,
                "customerId": customer_id,
                "orderTotal": cents,
                "appliedAt": now_iso(),
            }
        )

    async def unmark_order_applied(self, order_id: str) -> None:
        await self.order_stats.delete_one({"orderId": order_id})
