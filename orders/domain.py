"""The order rules: placement (idempotent, all-or-nothing), the transition table, the
views each caller may see, the dashboard figures and the background tasks.

Public functions are keyword-only and return data; the routes pick the messages. Errors
are ``shared.responses`` errors carrying their status. No store operators here: every
query and update lives in ``repository.py``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from orders.cart import Cart, product_image
from orders.effects import OrderEffects, placement_keys, release_key, transition_keys
from orders.repository import OrdersRepository
from orders.schemas import PlaceOrderIn
from orders.settings import OrdersSettings
from orders.upstream import Customers, Products, UpstreamStatus
from orders.views import cents_of
from shared.lease import StoreLease
from shared.responses import AppError, BadRequest, Conflict, Forbidden, GatewayTimeout, NotFound, ServiceUnavailable
from shared.store import Document, DuplicateKeyError, new_id
from shared.timeutil import now_iso, parse_iso, utcnow
from shared.validation import fields_of, from_cents, pagination, to_cents

log = logging.getLogger("orders.domain")

TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"confirmed", "cancelled", "failed"}),
    "confirmed": frozenset({"processing", "cancelled"}),
    "processing": frozenset({"shipped"}),
    "shipped": frozenset({"delivered"}),
}
ITEM_STATUS = {"confirmed": "confirmed", "delivered": "fulfilled", "cancelled": "cancelled", "failed": "cancelled"}
STAMPS = {"confirmed": "confirmedAt", "shipped": "shippedAt", "delivered": "deliveredAt", "cancelled": "cancelledAt"}
REVENUE_STATUSES = ("confirmed", "processing", "shipped", "delivered")
CANCELLABLE = ("pending", "confirmed")

ORDER_NOT_FOUND = "Order not found"
RESERVATION_GONE = "Inventory reservation is no longer active"
KEY_IN_PROGRESS = "A request with this Idempotency-Key is already in progress"
ADDRESS_REQUIRED = ("addressLine1", "city", "state", "country", "postalCode")
NUMBER_TRIES = 5
KEY_POLL_SECONDS = 0.05
# How long a process that took a periodic job's lease and died keeps the others from running it.
JOB_LEASE_SECONDS = 60.0

_sequence = itertools.count()


def order_number() -> str:
    """``ORD`` + 13-digit epoch ms + a per-process sequence ``% 1000`` (the unique index decides)."""
    return f"ORD{int(time.time() * 1000):013d}{next(_sequence) % 1000:03d}"


class PlacementFailed(AppError):
    status_code, message = 500, "Failed to place order"


@dataclass(frozen=True, slots=True)
class Placement:
    order: Document
    replayed: bool


@dataclass(frozen=True, slots=True)
class Caller:
    """Who reads orders: a customer (own), a seller (seller view) or staff (service key / admin)."""

    kind: str  # "customer" | "seller" | "staff"
    user_id: str | None = None


def _address_from_book(found: Mapping[str, Any]) -> dict[str, Any]:
    """Contract §6 mapping of a customer-service address view onto the order's address."""
    name = found.get("contactName") or " ".join(
        p for p in (found.get("firstName"), found.get("lastName")) if isinstance(p, str) and p
    )
    address = {
        "addressLine1": found.get("addressLine1") or found.get("street"),
        "addressLine2": found.get("addressLine2") or found.get("street2"),
        **fields_of(found, "city", "state", "country", "postalCode"),
        "contactName": name or None,
        "contactPhone": found.get("contactPhone") or found.get("phone"),
    }
    return {k: (v.strip() if isinstance(v, str) else v) for k, v in address.items()}


class Orders:
    def __init__(
        self,
        *,
        repo: OrdersRepository,
        cart: Cart,
        products: Products,
        customers: Customers,
        effects: OrderEffects,
        settings: OrdersSettings,
    ) -> None:
        self.repo = repo
        self.cart = cart
        self.products = products
        self.customers = customers
        self.effects = effects
        self.settings = settings
        self._tasks: list[asyncio.Task[None]] = []

    # placement

    async def place(
        self, *, customer_id: str, token_email: str | None, body: PlaceOrderIn, idempotency_key: str | None
    ) -> Placement:
        """Place the customer's cart as an order (contract §4.6 steps 1–12, §5 idempotency)."""
        if idempotency_key is None:
            order = await self._place(customer_id=customer_id, token_email=token_email, body=body, order_id=new_id())
            return Placement(order, replayed=False)
        claimed = await self._claim_key(customer_id=customer_id, key=idempotency_key)
        if isinstance(claimed, Placement):
            return claimed
        order_id = claimed
        try:
            order = await self._place(
                customer_id=customer_id, token_email=token_email, body=body, order_id=order_id, key=idempotency_key
            )
        except BaseException:
            await asyncio.shield(
                self.repo.finish_idempotency_key(
                    customer_id=customer_id, key=idempotency_key, order_id=order_id, status="failed"
                )
            )
            raise
        await self.repo.finish_idempotency_key(
            customer_id=customer_id, key=idempotency_key, order_id=order_id, status="completed"
        )
        return Placement(order, replayed=False)

    async def _claim_key(self, *, customer_id: str, key: str) -> str | Placement:
        """The order id this request places under ``key``, or the finished placement to replay."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.IDEMPOTENCY_WAIT_SECONDS
        order_id = new_id()
        while True:
            record = await self.repo.claim_idempotency_key(customer_id=customer_id, key=key, order_id=order_id)
            if record is None:
                return order_id
            status = record["status"]
            if status == "completed":
                order = await self.repo.get_order(record["orderId"])
                if order is not None:
                    return Placement(order, replayed=True)
                raise PlacementFailed()
            if status == "failed":
                if await self.repo.retry_failed_key(record, order_id=order_id):
                    return order_id
                continue
            age = (utcnow() - parse_iso(record["updatedAt"])).total_seconds()
            if age > self.settings.IDEMPOTENCY_STALE_SECONDS:
                if await self.repo.take_over_stale_key(record):
                    order = await self.repo.get_order(record["orderId"])
                    if order is None:
                        return record["orderId"]  # the reserve is idempotent per order id
                    await self._after_insert(order, queue_now=True)
                    await self.repo.finish_idempotency_key(
                        customer_id=customer_id, key=key, order_id=record["orderId"], status="completed"
                    )
                    return Placement(order, replayed=True)
                continue
            if loop.time() >= deadline:
                raise Conflict(KEY_IN_PROGRESS)
            await asyncio.sleep(KEY_POLL_SECONDS)

    async def _place(
        self, *, customer_id: str, token_email: str | None, body: PlaceOrderIn, order_id: str, key: str | None = None
    ) -> Document:
        """The placement steps of contract §4.6, in order; nothing is stored before the
        reservation holds, and an order that cannot be written gives its stock back."""
        cart_items = await self._cart_items(customer_id)
        name, email = await self._verified_customer(customer_id, token_email)
        address = await self._shipping_address(customer_id, body)
        items = await self._priced_items(cart_items)
        reservation = await self._reserve(order_id=order_id, customer_id=customer_id, items=items)
        expiry = (reservation or {}).get("expiresAt") or now_iso(timedelta(minutes=self.settings.RESERVATION_MINUTES))
        doc = self._new_order(
            order_id=order_id,
            customer_id=customer_id,
            name=name,
            email=email,
            items=items,
            body=body,
            address=address,
            expiry=expiry,
            key=key,
        )
        stored = await self._insert(doc)
        await self._after_insert(stored, queue_now=True)
        return stored

    async def _cart_items(self, customer_id: str) -> list[Document]:
        cart = await self.repo.get_cart(customer_id)
        cart_items = list((cart or {}).get("items") or [])
        if not cart_items:
            raise BadRequest("Cart is empty")
        return cart_items

    async def _verified_customer(self, customer_id: str, token_email: str | None) -> tuple[str | None, str | None]:
        """(name, email) of an active customer, from the customer service (token email as fallback)."""
        verified = await self.customers.verify(customer_id)
        if verified.get("isValid") is not True or verified.get("isActive") is False:
            raise Forbidden("Customer account is not active")
        email = verified.get("email") or token_email
        full_name = " ".join(p for p in (verified.get("firstName"), verified.get("lastName")) if p)
        return full_name or email, email

    async def _shipping_address(self, customer_id: str, body: PlaceOrderIn) -> Document:
        if body.shippingAddress is not None:
            return body.shippingAddress.model_dump()
        found = await self.customers.address(customer_id, body.shippingAddressId or "")
        if found is None:
            raise NotFound("Shipping address not found")
        address = _address_from_book(found)
        if any(not isinstance(address.get(f), str) or not address[f] for f in ADDRESS_REQUIRED):
            raise BadRequest("Shipping address is incomplete")
        return address

    async def _priced_items(self, cart_items: list[Document]) -> list[Document]:
        """Order lines at the products service's current prices (cart prices are not trusted)."""
        products = await self.products.bulk([i["productId"] for i in cart_items])
        missing = [i for i in cart_items if i["productId"] not in products]
        if missing:
            parts = [
                f"{i.get('productName') or i['productId']} (requested: {i['quantity']}, available: 0)" for i in missing
            ]
            raise Conflict("Some items are not available: " + ", ".join(parts))
        items = []
        for line in cart_items:
            product = products[line["productId"]]
            unit = to_cents(product.get("price", 0))
            quantity = int(line["quantity"])
            items.append(
                {
                    "productId": line["productId"],
                    "sellerId": product.get("sellerId"),
                    "productName": product.get("name"),
                    "productImage": product_image(product),
                    "quantity": quantity,
                    "unitPriceCents": unit,
                    "totalPriceCents": unit * quantity,
                    "status": "reserved",
                }
            )
        return items

    async def _reserve(self, *, order_id: str, customer_id: str, items: list[Document]) -> Document | None:
        """One all-or-nothing reservation; 409 with the products message when short."""
        try:
            return await self.products.reserve(
                order_id=order_id,
                customer_id=customer_id,
                items=[
                    {
                        "productId": i["productId"],
                        "quantity": i["quantity"],
                        "unitPrice": from_cents(i["unitPriceCents"]),
                    }
                    for i in items
                ],
                minutes=self.settings.RESERVATION_MINUTES,
            )
        except UpstreamStatus as exc:
            if exc.status == 409:
                errors = exc.body.get("errors") if isinstance(exc.body, dict) else None
                raise Conflict(exc.message, errors=errors if isinstance(errors, list) else None) from None
            raise ServiceUnavailable("Products service unavailable") from None
        except GatewayTimeout:
            await self.effects.queue_release(order_id)  # the outcome is unknown: give it back if it happened
            raise

    def _new_order(
        self,
        *,
        order_id: str,
        customer_id: str,
        name: str | None,
        email: str | None,
        items: list[Document],
        body: PlaceOrderIn,
        address: Document,
        expiry: str,
        key: str | None,
    ) -> Document:
        """The pending order document (Decimal money: TAX_RATE and SHIPPING_FEE, half-up cents)."""
        now = now_iso()
        subtotal = sum(i["totalPriceCents"] for i in items)
        tax = cents_of(Decimal(subtotal) / 100 * self.settings.TAX_RATE)
        shipping = cents_of(self.settings.SHIPPING_FEE)
        sellers = list(dict.fromkeys(i["sellerId"] for i in items if i["sellerId"]))
        return {
            "_id": order_id,
            "customerId": customer_id,
            "customerName": name,
            "customerEmail": email,
            "items": items,
            "sellerIds": sellers,
            "subtotalCents": subtotal,
            "taxCents": tax,
            "shippingFeeCents": shipping,
            "totalAmountCents": subtotal + tax + shipping,
            "status": "pending",
            "paymentMethod": body.paymentMethod,
            "paymentStatus": "pending",
            "shippingAddress": address,
            "notes": body.notes,
            "cancelReason": None,
            "statusHistory": [
                {"status": "pending", "at": now, "notes": "Order placed", "by": f"customer:{customer_id}"}
            ],
            "placedAt": now,
            "confirmedAt": None,
            "shippedAt": None,
            "deliveredAt": None,
            "cancelledAt": None,
            "reservationExpiry": expiry,
            "idempotencyKey": key,
            "outboxPending": placement_keys(order_id, sellers),
            "createdAt": now,
            "updatedAt": now,
        }

    async def _insert(self, doc: Document) -> Document:
        """Insert under a fresh order number (up to 5 tries); on failure give the stock back."""
        for _ in range(NUMBER_TRIES):
            doc["orderNumber"] = order_number()
            try:
                await self.repo.insert_order(doc)
                return doc
            except DuplicateKeyError as exc:
                if exc.key == "_id" or "orderNumber" not in (exc.key or "orderNumber"):
                    existing = await self.repo.get_order(doc["_id"])
                    if existing is not None:
                        return existing  # a crashed attempt under the same key wrote it already
            except Exception:
                log.exception("inserting order %s failed", doc["_id"])
                break
        await self._compensate(doc["_id"])
        raise PlacementFailed()

    async def _compensate(self, order_id: str) -> None:
        """Release the reservation of an order that could not be written (queued if products is down)."""
        try:
            await self.products.release(order_id=order_id, reason="Order placement failed")
        except Exception:
            log.warning("release of unwritten order %s failed; queued", order_id)
            await self.effects.queue_release(order_id)

    async def _after_insert(self, order: Document, *, queue_now: bool) -> None:
        """Queue the placement emails and take the ordered products out of the cart."""
        keys = [k for k in order.get("outboxPending") or [] if isinstance(k, str)]
        if keys:
            try:
                await self.effects.queue(order["_id"], keys, now=queue_now)
            except Exception:  # the keys stay on the order; the periodic repair queues them
                log.exception("queuing the effects of order %s failed", order["_id"])
        try:
            await self.repo.remove_cart_products(order["customerId"], [i["productId"] for i in order["items"]])
        except Exception:  # the order stands; a cart left full is harmless (placing again is refused or new)
            log.exception("emptying the cart after order %s failed", order["_id"])

    # transitions

    async def change_status(
        self,
        *,
        order_id: str,
        to: str,
        notes: str | None,
        by: str,
        owner_id: str | None = None,
        cancel_reason: str | None = None,
    ) -> Document:
        """Move an order along the transition table (contract §5) with its side effects.

        ``owner_id`` limits the change to that customer's order (others see 404) and turns the
        refusal into the cancellation message.
        """
        order = await self.repo.get_order(order_id)
        if order is None or (owner_id is not None and order["customerId"] != owner_id):
            raise NotFound(ORDER_NOT_FOUND)
        current = order["status"]
        if to not in TRANSITIONS.get(current, ()):
            raise self._refusal(current, to, customer=owner_id is not None)
        if to == "confirmed":
            await self._confirm_inventory(order_id)
        now = now_iso()
        fields = self._transition_fields(order, to=to, now=now, notes=notes, cancel_reason=cancel_reason)
        keys = transition_keys(order_id, to)
        changed = await self.repo.transition_status(
            order_id=order_id,
            from_status=current,
            set_fields=fields,
            history_entry={"status": to, "at": now, "notes": notes, "by": by},
            effects=keys,
        )
        if changed is None:
            latest = await self.repo.get_order(order_id) or order
            if to == "confirmed" and latest["status"] in ("cancelled", "failed"):
                await self.effects.release_now(order_id)  # we confirmed after it ended: give it back
            raise self._refusal(latest["status"], to, customer=owner_id is not None)
        try:
            await self.effects.queue(order_id, keys)
        except Exception:
            log.exception("queuing the effects of order %s failed; the repair task will", order_id)
            return changed
        if release_key(order_id) in keys:
            await self.effects.release_now(order_id)
        return changed

    async def _confirm_inventory(self, order_id: str) -> None:
        """Products confirms the reservation first (pending → confirmed); a gone one is a 409."""
        try:
            await self.products.confirm(order_id=order_id)
        except UpstreamStatus as exc:
            if exc.status in (404, 409):
                raise Conflict(RESERVATION_GONE) from None
            raise ServiceUnavailable("Products service unavailable") from None

    @staticmethod
    def _transition_fields(
        order: Document, *, to: str, now: str, notes: str | None, cancel_reason: str | None
    ) -> dict[str, Any]:
        """What a transition to ``to`` sets: status, item statuses, its timestamp, the cancel
        reason, and payment on delivery of a cash order."""
        fields: dict[str, Any] = {"status": to}
        if to in ITEM_STATUS:
            fields["items"] = [{**i, "status": ITEM_STATUS[to]} for i in order["items"]]
        if to in STAMPS:
            fields[STAMPS[to]] = now
        if to == "cancelled":
            fields["cancelReason"] = cancel_reason or notes or "Cancelled by admin"
        if to == "delivered" and order.get("paymentMethod") == "cod":
            fields["paymentStatus"] = "paid"
        return fields

    @staticmethod
    def _refusal(current: str, to: str, *, customer: bool) -> Conflict:
        if customer and to == "cancelled":
            return Conflict("Order cannot be cancelled in current status")
        return Conflict(f"Invalid status transition from {current} to {to}")

    async def cancel(self, *, order_id: str, customer_id: str, reason: str | None) -> Document:
        return await self.change_status(
            order_id=order_id,
            to="cancelled",
            notes=reason or "Customer cancellation",
            by=f"customer:{customer_id}",
            owner_id=customer_id,
            cancel_reason=reason or "Customer cancellation",
        )

    # reads

    async def get(self, *, order_id: str, caller: Caller) -> tuple[Document, str | None]:
        """The order and the seller id whose view the caller gets (None: the full order)."""
        order = await self.repo.get_order(order_id)
        if order is None:
            raise NotFound(ORDER_NOT_FOUND)
        if caller.kind == "customer" and order["customerId"] != caller.user_id:
            raise NotFound(ORDER_NOT_FOUND)
        if caller.kind == "seller":
            if caller.user_id not in (order.get("sellerIds") or []):
                raise NotFound(ORDER_NOT_FOUND)
            return order, caller.user_id
        return order, None

    async def page(
        self,
        *,
        page: int,
        limit: int,
        customer_id: str | None = None,
        seller_id: str | None = None,
        status: str | None = None,
        search: str | None = None,
    ) -> tuple[list[Document], dict[str, int]]:
        filter = self.repo.order_filter(customer_id=customer_id, seller_id=seller_id, status=status, search=search)
        docs, total = await self.repo.list_orders(filter, skip=(page - 1) * limit, limit=limit)
        return docs, pagination(page, limit, total)

    async def stats(self) -> dict[str, Any]:
        by_status = await self.repo.count_by_status()
        revenue = await self.repo.revenue_cents(REVENUE_STATUSES)
        return {"total": sum(by_status.values()), "byStatus": by_status, "revenue": from_cents(revenue)}

    async def drain_outbox(self) -> dict[str, int]:
        """Deliver every pending outbox row now (backoff skipped); how many were sent, will be
        retried, failed for good."""
        tally = {"sent": 0, "retrying": 0, "failed": 0}
        await self.repo.make_outbox_due()
        for key in await self.repo.due_outbox_keys():
            status = await self.effects.outbox.attempt(key)
            if status == "sent":
                tally["sent"] += 1
            elif status == "failed":
                tally["failed"] += 1
            elif status is not None:
                tally["retrying"] += 1
        return tally

    # background work

    async def fail_expired(self) -> int:
        """Fail pending orders whose reservation expired more than the grace period ago."""
        before = now_iso(timedelta(seconds=-self.settings.PENDING_GRACE_SECONDS))
        failed = 0
        for doc in await self.repo.expired_pending_orders(before=before):
            try:
                await self.change_status(order_id=doc["_id"], to="failed", notes="Reservation expired", by="system")
                failed += 1
            except Conflict:
                pass  # changed meanwhile (confirmed or cancelled): nothing to do
        return failed

    async def housekeeping(self) -> None:
        keys, carts = await self.repo.purge_old(key_age=timedelta(hours=24), cart_age=timedelta(days=30))
        sent = await self.effects.outbox.purge_sent()
        if keys or carts or sent:
            log.info("housekeeping: %d idempotency keys, %d carts, %d outbox rows removed", keys, carts, sent)

    async def start(self) -> None:
        # Several processes on one store: each job runs in one of them at a time (a lease),
        # so two repair passes never queue the same effect twice.
        jobs = (
            ("orders.expiry", self.settings.EXPIRY_TASK_SECONDS, self._tick),
            ("orders.housekeeping", self.settings.HOUSEKEEPING_SECONDS, self.housekeeping),
        )
        for name, seconds, job in jobs:
            if seconds > 0:
                lease = self.repo.lease(name, seconds=JOB_LEASE_SECONDS)
                self._tasks.append(asyncio.create_task(self._every(seconds, job, lease)))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._tasks.clear()

    async def _tick(self) -> None:
        await self.effects.repair()
        failed = await self.fail_expired()
        if failed:
            log.info("failed %d orders whose reservation expired", failed)

    @staticmethod
    async def _every(seconds: float, job: Any, lease: StoreLease) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                async with lease.held() as mine:
                    if mine:
                        await job()
            except Exception:
                log.exception("background job failed")
