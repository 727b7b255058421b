"""The side effects of orders, delivered through the shared outbox (contract §5 "Outbox").

A state change records the dedupe keys of its effects on the order itself
(``outboxPending``, in the same atomic write); the rows are then queued and the keys
dropped. A crash in between leaves the keys on the order and the periodic task queues them
again, so no effect is lost. Every call is built at send time from the current order, so
a row always carries the newest data and a row whose change never happened sends nothing.

Dedupe keys: ``<orderId>:order_confirmation``, ``<orderId>:new_order_seller:<sellerId>``,
``<orderId>:status:<status>``, ``<orderId>:release``, ``<orderId>:order_stats``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from orders.repository import OrdersRepository
from orders.upstream import Sellers
from orders.views import money_text
from shared.outbox import Outbox, OutboxEntry, OutboxRequest
from shared.store import Document
from shared.timeutil import now_iso

log = logging.getLogger("orders.effects")

NOTIFICATION = "notification"
SELLER_NOTIFICATION = "seller_notification"
INVENTORY_RELEASE = "inventory_release"
CUSTOMER_ORDER_STATS = "customer_order_stats"
KINDS = (NOTIFICATION, SELLER_NOTIFICATION, INVENTORY_RELEASE, CUSTOMER_ORDER_STATS)

NOTIFY_PERMANENT = frozenset({502})
STATS_PERMANENT = frozenset({404})
ORPHAN_AFTER = timedelta(minutes=10)
"""A row whose order still does not exist after this long belongs to a placement that failed."""


def confirmation_key(order_id: str) -> str:
    return f"{order_id}:order_confirmation"


def seller_key(order_id: str, seller_id: str) -> str:
    return f"{order_id}:new_order_seller:{seller_id}"


def status_key(order_id: str, status: str) -> str:
    return f"{order_id}:status:{status}"


def release_key(order_id: str) -> str:
    return f"{order_id}:release"


def stats_key(order_id: str) -> str:
    return f"{order_id}:order_stats"


def placement_keys(order_id: str, seller_ids: list[str]) -> list[str]:
    return [confirmation_key(order_id), *(seller_key(order_id, s) for s in seller_ids)]


def transition_keys(order_id: str, status: str) -> list[str]:
    keys = [status_key(order_id, status)]
    if status in ("cancelled", "failed"):
        keys.append(release_key(order_id))
    if status == "delivered":
        keys.append(stats_key(order_id))
    return keys


def row_for(key: str) -> tuple[str, dict[str, Any]]:
    """The outbox ``kind`` and ``payload`` of a dedupe key."""
    order_id, _, rest = key.partition(":")
    what, _, arg = rest.partition(":")
    if what == "order_confirmation":
        return NOTIFICATION, {"orderId": order_id, "template": "order_confirmation"}
    if what == "new_order_seller":
        return SELLER_NOTIFICATION, {"orderId": order_id, "template": "new_order_seller", "sellerId": arg}
    if what == "status":
        return NOTIFICATION, {"orderId": order_id, "template": "order_status_update", "status": arg}
    if what == "release":
        return INVENTORY_RELEASE, {"orderId": order_id}
    if what == "order_stats":
        return CUSTOMER_ORDER_STATS, {"orderId": order_id}
    raise ValueError(f"unknown effect key {key!r}")


def _email_items(items: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "name": i.get("productName"),
            "quantity": int(i["quantity"]),
            "unit_price": money_text(int(i["unitPriceCents"])),
            "total_price": money_text(int(i["totalPriceCents"])),
        }
        for i in items
    ]


class OrderEffects:
    """Queues the effects of a change and builds each outbox call when it is sent."""

    def __init__(self, *, repo: OrdersRepository, outbox: Outbox, sellers: Sellers) -> None:
        self.repo = repo
        self.outbox = outbox
        self.sellers = sellers
        for kind in KINDS:
            outbox.register(kind, self.build)

    # queuing

    async def queue(self, order_id: str, keys: list[str], *, now: bool = True) -> None:
        """Queue the rows of ``keys`` (idempotent), drop them from the order's to-queue list and,
        with ``now``, try each in the background at once (a release is sent by its caller).

        New rows go in with one store write (a placement's emails: one write, not one per
        row, and already claimed for the immediate attempt)."""
        soon = [key for key in keys if now and not key.endswith(":release")]
        later = [key for key in keys if key not in soon]
        for group, send_soon in ((soon, True), (later, False)):
            if group:
                rows = [(key, *row_for(key)) for key in group]
                entries = [OutboxEntry(kind=kind, dedupe_key=key, payload=payload) for key, kind, payload in rows]
                await self.outbox.enqueue_many(entries, send_soon=send_soon)
        await self.repo.effects_queued(order_id, keys)

    async def queue_release(self, order_id: str) -> None:
        """Queue a release that no order records (a placement that failed after reserving)."""
        kind, payload = row_for(release_key(order_id))
        await self.outbox.enqueue(kind=kind, dedupe_key=release_key(order_id), payload=payload)

    async def release_now(self, order_id: str) -> str | None:
        """Deliver the order's release row now and wait; a failure leaves it queued."""
        try:
            return await self.outbox.attempt(release_key(order_id))
        except Exception:
            log.exception("release of %s failed; it stays queued", order_id)
            return None

    async def repair(self, *, older_than_seconds: float = 30.0) -> int:
        """Queue effects a crash left recorded on orders but not queued; return how many orders."""
        orders = await self.repo.orders_with_unqueued_effects(older_than_seconds=older_than_seconds)
        for order in orders:
            keys = [k for k in order.get("outboxPending") or [] if isinstance(k, str)]
            present = await self.repo.outbox_keys_present(keys)
            missing = [k for k in keys if k not in present]
            for key in missing:
                kind, payload = row_for(key)
                await self.outbox.enqueue(kind=kind, dedupe_key=key, payload=payload)
            await self.repo.effects_queued(order["_id"], keys)
        return len(orders)

    # building (outbox handlers)

    async def build(self, row: Mapping[str, Any]) -> OutboxRequest | None:
        payload = row["payload"]
        order = await self.repo.get_order(payload["orderId"])
        kind = row["kind"]
        if kind == INVENTORY_RELEASE:
            return self._release(row, order)
        if order is None:
            if row.get("createdAt", now_iso()) > now_iso(-ORPHAN_AFTER):
                raise LookupError(f"order {payload['orderId']} not written yet")
            return None  # the placement failed: there is nothing to tell anyone
        if kind == NOTIFICATION:
            return self._customer_email(payload, order)
        if kind == SELLER_NOTIFICATION:
            return await self._seller_email(row, order)
        if kind == CUSTOMER_ORDER_STATS:
            return OutboxRequest(
                service="customer",
                method="POST",
                path=f"/api/v1/customers/service/{order['customerId']}/order-stats",
                json={"orderTotal": float(money_text(int(order["totalAmountCents"]))), "orderId": order["_id"]},
                timeout=5.0,
                permanent_statuses=STATS_PERMANENT,
            )
        raise ValueError(f"unknown outbox kind {kind!r}")

    @staticmethod
    def _release(row: Mapping[str, Any], order: Document | None) -> OutboxRequest | None:
        if order is not None and order["status"] not in ("cancelled", "failed"):
            return None  # the order is alive: its reservation must stay
        if order is None:
            reason = "Order placement failed"
        elif order["status"] == "cancelled":
            reason = order.get("cancelReason") or "Order cancelled"
        else:
            reason = "Order failed"
        return OutboxRequest(
            service="products",
            method="POST",
            path="/api/v1/service/inventory/release",
            json={"orderId": row["payload"]["orderId"], "reason": reason},
            timeout=10.0,
        )

    @staticmethod
    def _notify(template: str, email: str | None, name: str | None, data: Mapping[str, Any]) -> OutboxRequest | None:
        if not email:
            return None
        return OutboxRequest(
            service="notifications",
            method="POST",
            path="/api/v1/send",
            json={"template": template, "recipient_email": email, "recipient_name": name or "", "data": dict(data)},
            timeout=5.0,
            permanent_statuses=NOTIFY_PERMANENT,
        )

    def _customer_email(self, payload: Mapping[str, Any], order: Document) -> OutboxRequest | None:
        template = payload["template"]
        total = money_text(int(order["totalAmountCents"]))
        if template == "order_confirmation":
            data = {
                "customer_name": order.get("customerName"),
                "order_number": order["orderNumber"],
                "order_id": order["_id"],
                "total_amount": total,
                "items": _email_items(order.get("items") or []),
                "placed_at": order.get("placedAt"),
            }
            return self._notify(template, order.get("customerEmail"), order.get("customerName"), data)
        history = order.get("statusHistory") or []
        index = next((n for n, h in enumerate(history) if h["status"] == payload["status"]), None)
        if index is None:
            return None  # that transition never happened
        data = {
            "customer_name": order.get("customerName"),
            "order_number": order["orderNumber"],
            "status": payload["status"],
            "previous_status": history[index - 1]["status"] if index > 0 else None,
            "notes": history[index].get("notes"),
            "tracking_number": None,
            "carrier": None,
            "total_amount": total,
        }
        return self._notify(template, order.get("customerEmail"), order.get("customerName"), data)

    async def _seller_email(self, row: Mapping[str, Any], order: Document) -> OutboxRequest | None:
        seller_id = row["payload"]["sellerId"]
        seller = await self.sellers.contact(seller_id)  # down → raises → retried
        if seller is None:
            await self.repo.fail_outbox_row(row["_id"], f"seller {seller_id} unknown or inactive")
            return None
        items = [i for i in order.get("items") or [] if i.get("sellerId") == seller_id]
        name = seller.get("businessName") or seller.get("fullName")
        data = {
            "seller_name": name,
            "order_number": order["orderNumber"],
            "customer_name": order.get("customerName"),
            "items": _email_items(items),
            "total_amount": money_text(sum(int(i["totalPriceCents"]) for i in items)),
        }
        return self._notify("new_order_seller", seller.get("email"), name, data)
