"""Data access of the customer service through the document-store port (no rules here).

The account operations every kind of account shares come from
:class:`shared.accounts.AccountRepository`; this adds addresses and order statistics.
"""

from __future__ import annotations

from collections.abc import Mapping

from shared.accounts import AccountRepository
from shared.store import Document, DocumentStore, new_id
from shared.timeutil import now_iso


class CustomerRepository(AccountRepository):
    """The collections ``customers``, ``addresses``, ``refresh_tokens``, ``order_stats_applied``."""

    def __init__(self, store: DocumentStore) -> None:
        super().__init__(store, "customers")
        self.customers = self.accounts
        self.addresses = store.collection("addresses")
        self.order_stats = store.collection("order_stats_applied")

    async def create_indexes(self) -> None:
        await self.create_account_indexes(
            ("createdAt", "isActive", "phone", "emailVerificationTokenHash", "passwordResetTokenHash")
        )
        await self.addresses.create_index([("customerId", 1), ("isActive", 1)])
        await self.addresses.create_index([("customerId", 1), ("updatedAt", -1)])
        await self.order_stats.create_index("orderId", unique=True)

    # customers

    async def close(self, customer_id: str, fields: Mapping[str, object]) -> Document | None:
        """Deactivate (or delete) with ``fields``; the token version moves on."""
        return await self.update({"_id": customer_id}, set_fields=fields, inc={"tokenVersion": 1})

    async def set_default_address(self, customer_id: str, address_id: str | None) -> Document | None:
        return await self.set_fields(customer_id, {"defaultAddressId": address_id})

    async def claim_first_default(self, customer_id: str, address_id: str) -> bool:
        """Make ``address_id`` the default only while there is none (two first adds: one wins)."""
        won = await self.update(
            {"_id": customer_id, "defaultAddressId": None}, set_fields={"defaultAddressId": address_id}
        )
        return won is not None

    async def replace_default(self, customer_id: str, *, old: str, new: str | None) -> None:
        """Move the default from ``old`` to ``new`` only if it is still ``old``."""
        await self.update({"_id": customer_id, "defaultAddressId": old}, set_fields={"defaultAddressId": new})

    async def add_order(self, customer_id: str, *, cents: int, points: int) -> Document | None:
        return await self.update(
            {"_id": customer_id}, inc={"totalOrders": 1, "totalSpentCents": cents, "loyaltyPoints": points}
        )

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
        self, customer_id: str, address_id: str, *, set_fields: Mapping[str, object]
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
