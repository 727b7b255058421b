"""Data operations of the orders service, named by intention.

Every query and update document of the service lives here; the domain never builds one.
Money is stored as integer cents, times as ISO strings (``shared.timeutil``). Every change
that must not be lost to a race is one conditional atomic update: the cart on its
``version``, an order on its current ``status``, an idempotency key on its unique index.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from shared.lease import StoreLease
from shared.store import Collection, Document, DocumentStore, DuplicateKeyError
from shared.timeutil import now_iso

ORDER_STATUSES = ("pending", "confirmed", "processing", "shipped", "delivered", "cancelled", "failed")


class OrdersRepository:
    def __init__(self, store: DocumentStore, outbox_rows: Collection) -> None:
        self._store = store
        self.carts = store.collection("carts")
        self.orders = store.collection("orders")
        self.keys = store.collection("idempotency_keys")
        self.outbox = outbox_rows

    def lease(self, name: str, *, seconds: float) -> StoreLease:
        """A lease in this store (one process at a time runs the periodic job it guards)."""
        return StoreLease(self._store, name, seconds=seconds)

    async def create_indexes(self) -> None:
        await self.carts.create_index("customerId", unique=True)
        await self.carts.create_index("updatedAt")
        await self.orders.create_index("orderNumber", unique=True)
        await self.orders.create_index([("customerId", 1), ("createdAt", -1)])
        await self.orders.create_index([("sellerIds", 1), ("createdAt", -1)])
        await self.orders.create_index([("status", 1), ("createdAt", -1)])
        await self.orders.create_index([("status", 1), ("reservationExpiry", 1)])
        await self.orders.create_index("createdAt")
        await self.keys.create_index([("customerId", 1), ("key", 1)], unique=True)
        await self.keys.create_index("createdAt")

    # carts

    async def get_or_create_cart(self, customer_id: str) -> Document:
        """The customer's cart, created empty (version 0) when there is none."""
        now = now_iso()
        fresh = {"customerId": customer_id, "items": [], "version": 0, "createdAt": now, "updatedAt": now}
        for _ in range(3):
            try:
                doc = await self.carts.find_one_and_update(
                    {"customerId": customer_id}, {"$setOnInsert": fresh}, upsert=True
                )
            except DuplicateKeyError:  # a concurrent first request created it
                doc = await self.carts.find_one({"customerId": customer_id})
            if doc is not None:
                return doc
        raise RuntimeError("cart could not be created")  # pragma: no cover

    async def get_cart(self, customer_id: str) -> Document | None:
        return await self.carts.find_one({"customerId": customer_id})

    async def replace_cart_items(self, cart: Mapping[str, Any], items: list[dict[str, Any]]) -> Document | None:
        """Compare-and-set of the item list on the cart's ``version``; None when the cart moved on."""
        return await self.carts.find_one_and_update(
            {"_id": cart["_id"], "version": cart["version"]},
            {"$set": {"items": items, "updatedAt": now_iso()}, "$inc": {"version": 1}},
        )

    async def remove_cart_products(self, customer_id: str, product_ids: Sequence[str]) -> None:
        """Take these products out of the cart (one atomic ``$pull``; the version moves on)."""
        await self.carts.update_one(
            {"customerId": customer_id},
            {
                "$pull": {"items": {"productId": {"$in": list(product_ids)}}},
                "$set": {"updatedAt": now_iso()},
                "$inc": {"version": 1},
            },
        )

    async def empty_cart(self, customer_id: str) -> None:
        await self.carts.update_one(
            {"customerId": customer_id},
            {"$set": {"items": [], "updatedAt": now_iso()}, "$inc": {"version": 1}},
        )

    # idempotency keys

    async def claim_idempotency_key(self, *, customer_id: str, key: str, order_id: str) -> Document | None:
        """Insert ``in_progress`` for (customer, key): None when this call won, else the existing record."""
        now = now_iso()
        doc = {
            "customerId": customer_id, "key": key, "orderId": order_id,
            "status": "in_progress", "createdAt": now, "updatedAt": now,
        }  # fmt: skip
        try:
            await self.keys.insert_one(doc)
            return None
        except DuplicateKeyError:
            existing = await self.keys.find_one({"customerId": customer_id, "key": key})
            return existing if existing is not None else {**doc, "status": "failed", "_id": None}

    async def get_idempotency_key(self, *, customer_id: str, key: str) -> Document | None:
        return await self.keys.find_one({"customerId": customer_id, "key": key})

    async def retry_failed_key(self, record: Mapping[str, Any], *, order_id: str) -> bool:
        """``failed`` → ``in_progress`` with a new order id; True when this call won."""
        now = now_iso()
        won = await self.keys.find_one_and_update(
            {"_id": record["_id"], "status": "failed", "updatedAt": record["updatedAt"]},
            {"$set": {"status": "in_progress", "orderId": order_id, "updatedAt": now, "takenOverAt": now}},
        )
        return won is not None

    async def take_over_stale_key(self, record: Mapping[str, Any]) -> bool:
        """A crashed ``in_progress`` record (same order id) becomes ours; True when this call won."""
        won = await self.keys.find_one_and_update(
            {"_id": record["_id"], "status": "in_progress", "updatedAt": record["updatedAt"]},
            {"$set": {"updatedAt": now_iso(), "takenOverAt": now_iso()}},
        )
        return won is not None

    async def finish_idempotency_key(self, *, customer_id: str, key: str, order_id: str, status: str) -> None:
        """``in_progress`` → ``completed`` / ``failed`` for the attempt that owns ``order_id``."""
        await self.keys.update_one(
            {"customerId": customer_id, "key": key, "orderId": order_id, "status": "in_progress"},
            {"$set": {"status": status, "updatedAt": now_iso()}},
        )

    # orders

    async def insert_order(self, doc: Document) -> None:
        """Insert a new order; :class:`DuplicateKeyError` (``key``) on a taken id or order number."""
        await self.orders.insert_one(doc)

    async def get_order(self, order_id: str) -> Document | None:
        return await self.orders.find_one({"_id": order_id})

    async def transition_status(
        self,
        *,
        order_id: str,
        from_status: str,
        set_fields: Mapping[str, Any],
        history_entry: Mapping[str, Any],
        effects: Sequence[str],
    ) -> Document | None:
        """Move the order from ``from_status`` (the condition) and record the history entry and
        the side effects still to queue, in one atomic update. None when the status moved on."""
        return await self.orders.find_one_and_update(
            {"_id": order_id, "status": from_status},
            {
                "$set": {**set_fields, "updatedAt": history_entry["at"]},
                "$push": {"statusHistory": dict(history_entry), "outboxPending": {"$each": list(effects)}},
            },
        )

    async def effects_queued(self, order_id: str, keys: Iterable[str]) -> None:
        """The outbox rows of ``keys`` exist: drop them from the order's to-queue list."""
        await self.orders.update_one({"_id": order_id}, {"$pull": {"outboxPending": {"$in": list(keys)}}})

    async def orders_with_unqueued_effects(self, *, older_than_seconds: float, limit: int = 100) -> list[Document]:
        """Orders whose side effects were recorded but not (yet) queued: a crash in between."""
        return await self.orders.find(
            {"outboxPending": {"$gt": ""}, "updatedAt": {"$lt": now_iso(timedelta(seconds=-older_than_seconds))}},
            limit=limit,
        )

    async def list_orders(self, filter: Mapping[str, Any], *, skip: int, limit: int) -> tuple[list[Document], int]:
        docs = await self.orders.find(filter, sort=[("createdAt", -1), ("_id", -1)], skip=skip, limit=limit)
        return docs, await self.orders.count(filter)

    async def expired_pending_orders(self, *, before: str, limit: int = 100) -> list[Document]:
        return await self.orders.find(
            {"status": "pending", "reservationExpiry": {"$lt": before}},
            sort=[("reservationExpiry", 1)],
            limit=limit,
            projection={"_id": 1, "status": 1},
        )

    async def count_by_status(self) -> dict[str, int]:
        return {status: await self.orders.count({"status": status}) for status in ORDER_STATUSES}

    async def revenue_cents(self, statuses: Sequence[str]) -> int:
        rows = await self.orders.find({"status": {"$in": list(statuses)}}, projection={"totalAmountCents": 1})
        return sum(int(r.get("totalAmountCents", 0)) for r in rows)

    # filters (documents the domain asks for by meaning)

    @staticmethod
    def order_filter(
        *,
        customer_id: str | None = None,
        seller_id: str | None = None,
        status: str | None = None,
        search: str | None = None,
    ) -> dict[str, Any]:
        conditions: list[dict[str, Any]] = []
        if customer_id:
            conditions.append({"customerId": customer_id})
        if seller_id:
            conditions.append({"sellerIds": seller_id})
        if status:
            conditions.append({"status": status})
        if search:
            pattern = {"$regex": re.escape(search), "$options": "i"}
            conditions.append(
                {"$or": [{"orderNumber": pattern}, {"customerName": pattern}, {"customerEmail": pattern}]}
            )
        if not conditions:
            return {}
        return conditions[0] if len(conditions) == 1 else {"$and": conditions}

    # outbox (read side and the one write a handler needs)

    async def list_outbox(
        self, *, status: str | None, order_id: str | None, skip: int, limit: int
    ) -> tuple[list[Document], int]:
        conditions: list[dict[str, Any]] = []
        if status:
            conditions.append({"status": status})
        if order_id:
            conditions.append({"payload.orderId": order_id})
        filter: dict[str, Any] = {"$and": conditions} if len(conditions) > 1 else (conditions[0] if conditions else {})
        docs = await self.outbox.find(filter, sort=[("createdAt", 1), ("_id", 1)], skip=skip, limit=limit)
        return docs, await self.outbox.count(filter)

    async def make_outbox_due(self) -> None:
        """Every row waiting for its backoff becomes due now (an operator's "retry now")."""
        await self.outbox.update_many(
            {"status": "pending", "nextAttemptAt": {"$gt": now_iso()}}, {"$set": {"nextAttemptAt": now_iso()}}
        )

    async def due_outbox_keys(self, *, limit: int = 100) -> list[str]:
        now = now_iso()
        rows = await self.outbox.find(
            {
                "$or": [
                    {"status": "pending", "nextAttemptAt": {"$lte": now}},
                    {"status": "sending", "claimedUntil": {"$lte": now}},
                ]
            },
            sort=[("nextAttemptAt", 1)],
            limit=limit,
            projection={"dedupeKey": 1},
        )
        return [r["dedupeKey"] for r in rows]

    async def outbox_keys_present(self, keys: Sequence[str]) -> set[str]:
        rows = await self.outbox.find({"dedupeKey": {"$in": list(keys)}}, projection={"dedupeKey": 1})
        return {r["dedupeKey"] for r in rows}

    async def fail_outbox_row(self, row_id: str, error: str) -> None:
        """Close a row for good while it is being sent (a seller that no longer exists)."""
        await self.outbox.update_one(
            {"_id": row_id, "status": "sending"},
            {"$set": {"status": "failed", "lastError": error, "claimedUntil": None, "updatedAt": now_iso()}},
        )

    # housekeeping

    async def purge_old(self, *, key_age: timedelta, cart_age: timedelta) -> tuple[int, int]:
        keys = await self.keys.delete_many({"createdAt": {"$lt": now_iso(-key_age)}})
        carts = await self.carts.delete_many({"updatedAt": {"$lt": now_iso(-cart_age)}})
        return keys, carts
