"""Stock: seller stock changes, bulk deltas and the reservation protocol (contract §4.9–24, §5).

The rules live here; every query and update document is an intention-named operation of
:class:`products.repository.ProductRepository`. Each change to ``stock``, ``reservedStock``,
``soldStock``, ``totalStock``, ``totalSold`` or ``revenueCents`` is one conditional atomic
update that changes ``stock`` together with the counters it derives from and the
``stockLevel`` it gives; nothing here reads, modifies and writes back unconditionally.

Reservations: one document per order (``orderId`` unique) whose status moves with conditional
updates ``pending → active → confirmed | cancelled | expired`` (``failed`` when a line could
not be reserved). Each product carries its active lines in ``reservations``; a line is
converted (sold, released, expired) only by an update whose filter requires the order's
entry to still be there, so confirm, release and expiry may race without double counting.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from products.domain import PRODUCT_NOT_FOUND, Catalogue, is_public, sale_entry_id
from products.levels import MAX_STOCK, stock_change_type
from products.repository import ProductRepository
from products.schemas import QuantityLine, ReserveLine
from products.settings import ProductsSettings
from products.views import inventory_view
from shared.responses import Conflict, NotFound
from shared.store import Document, DuplicateKeyError, new_id
from shared.timeutil import now_iso
from shared.validation import from_cents

log = logging.getLogger("products.inventory")

STOCK_RETRIES = 5
BULK_RETRIES = 20
PENDING_WAIT_SECONDS = 10.0
STALE_PENDING = timedelta(minutes=5)
# How long a process that took the sweep lease and died keeps the others from sweeping.
SWEEP_LEASE_SECONDS = 60.0
NO_LONGER_ACTIVE = "Reservation is no longer active"
CHANGED_CONCURRENTLY = "Stock changed concurrently, please retry"


def _marker_id(kind: str, order_id: str, product_id: str) -> str:
    return hashlib.sha1(f"{kind}|{order_id}|{product_id}".encode()).hexdigest()[:24]


def stock_entry(
    product: Mapping[str, Any], previous: int, new: int, *, notes: str | None, entry_id: str | None = None, **extra: Any
) -> Document:
    """A ``stock_add``/``stock_reduce`` history entry (the type by the sign of the change)."""
    return {
        "_id": entry_id or new_id(), "productId": product["_id"], "sellerId": product["sellerId"],
        "type": stock_change_type(new - previous), "previousValue": previous, "newValue": new,
        "previousStock": previous, "newStock": new, "quantity": new - previous, "notes": notes,
        "createdAt": now_iso(), **extra,
    }  # fmt: skip


@dataclass(frozen=True, slots=True)
class Reserved:
    """What a reserve did: the reservation view; ``existing`` when it was already there."""

    data: dict[str, Any]
    existing: bool = False


@dataclass(frozen=True, slots=True)
class Confirmed:
    """What a confirm did; ``already`` when the reservation was confirmed before."""

    data: dict[str, Any]
    already: bool = False


class Inventory:
    """Stock use cases. Built once per app; public methods are keyword-only."""

    def __init__(self, *, repo: ProductRepository, catalogue: Catalogue, settings: ProductsSettings) -> None:
        self.repo = repo
        self.catalogue = catalogue
        self.settings = settings
        self._task: asyncio.Task[None] | None = None
        # Several processes on one store: one sweeps at a time (each expiry is conditional anyway).
        self._sweep_lease = repo.lease("products.reservation-sweep", seconds=SWEEP_LEASE_SECONDS)

    # seller stock endpoints

    async def _set_counters(self, *, product: Document, counters: Any, notes: str | None) -> tuple[Document, Document]:
        """Apply ``counters(current) -> {field: value}`` as a compare-and-set on the counters read,
        with its history entry in the same write; retried on a concurrent change, then 409."""
        current: Document | None = product
        for _ in range(STOCK_RETRIES):
            if current is None or current.get("status") == "deleted":
                raise NotFound(PRODUCT_NOT_FOUND)
            values = counters(current)
            previous, new = int(current["stock"]), int(values["stock"])
            entry = stock_entry(current, previous, new, notes=notes) if new != previous else None
            after = await self.repo.record_stock_change(product=current, set_counters=values, entry=entry)
            if after is not None:
                if entry is not None:
                    await self.repo.flush_history(product_id=after["_id"], entries=[entry])
                return current, after
            current = await self.repo.get_product(product["_id"])
        raise Conflict(CHANGED_CONCURRENTLY)

    async def set_available(self, *, product: Document, stock: int, notes: str | None) -> dict[str, Any]:
        """Endpoint 9: make available = ``stock`` by setting totalStock = stock + reserved + sold."""

        def counters(current: Document) -> dict[str, int]:
            return {"totalStock": stock + int(current["reservedStock"]) + int(current["soldStock"]), "stock": stock}

        before, _ = await self._set_counters(product=product, counters=counters, notes=notes)
        previous = int(before["stock"])
        return {
            "productId": before["_id"], "previousStock": previous, "newStock": stock,
            "stockChange": stock - previous, "notes": notes,
        }  # fmt: skip

    async def adjust_total(self, *, product: Document, new_total: int, notes: str | None) -> dict[str, Any]:
        """Endpoint 11: set totalStock (never below reserved + sold)."""

        def counters(current: Document) -> dict[str, int]:
            held = int(current["reservedStock"]) + int(current["soldStock"])
            if new_total < held:
                raise Conflict(f"Total stock cannot be less than reserved plus sold ({held})")
            if new_total - held > MAX_STOCK:
                raise Conflict(f"Available stock cannot exceed {MAX_STOCK}")
            return {"totalStock": new_total, "stock": new_total - held}

        _, after = await self._set_counters(product=product, counters=counters, notes=notes)
        return inventory_view(await self.repo.get_product(after["_id"]) or after, with_reservations=False)

    async def set_low_alert(self, *, product: Document, threshold: int) -> Document:
        """``lowStockAlert`` and the stock level it gives, in one write."""
        current: Document | None = product
        for _ in range(STOCK_RETRIES):
            if current is None:
                raise NotFound(PRODUCT_NOT_FOUND)
            after = await self.repo.set_low_alert(product=current, threshold=threshold)
            if after is not None:
                return after
            current = await self.repo.get_product(product["_id"])
        raise Conflict(CHANGED_CONCURRENTLY)

    async def bulk_change(self, *, updates: list[tuple[str, int]]) -> list[dict[str, Any]]:
        """Endpoint 18: all-or-nothing deltas, applied in order and undone on the first failure.

        Each delta is a compare-and-set on the stock read (so available stays within
        0..MAX_STOCK) that writes its history entry in the same update."""
        applied: list[tuple[Document, Document]] = []
        results: list[dict[str, Any]] = []
        try:
            for product_id, change in updates:
                after, entry = await self._apply_delta(product_id, change)
                applied.append((after, entry))
                results.append(
                    {
                        "productId": product_id,
                        "success": True,
                        "previousStock": entry["previousStock"],
                        "newStock": entry["newStock"],
                        "stockChange": change,
                    }  # fmt: skip
                )
        except (Conflict, NotFound):
            await self._undo_changes(applied)
            raise
        for after, entry in applied:
            await self.repo.flush_history(product_id=after["_id"], entries=[entry])
        return results

    async def _apply_delta(self, product_id: str, change: int) -> tuple[Document, Document]:
        for _ in range(BULK_RETRIES):
            current = await self.repo.get_product(product_id)
            if current is None or current.get("status") == "deleted":
                raise NotFound(f"Product not found: {product_id}")
            previous = int(current["stock"])
            new = previous + change
            if new < 0:
                raise Conflict(f"Insufficient stock for product {product_id}: available {previous}, change {change}")
            if new > MAX_STOCK:
                raise Conflict(
                    f"Stock for product {product_id} cannot exceed {MAX_STOCK}: available {previous}, change {change}"
                )
            entry = stock_entry(current, previous, new, notes="Bulk stock update")
            after = await self.repo.record_stock_change(
                product=current,
                set_counters={"stock": new, "totalStock": int(current["totalStock"]) + change},
                entry=entry,
            )
            if after is not None:
                return after, entry
        raise Conflict(CHANGED_CONCURRENTLY)

    async def _undo_changes(self, applied: list[tuple[Document, Document]]) -> None:
        for after, entry in reversed(applied):
            change = int(entry["quantity"])
            undone = await self.repo.undo_stock_change(product_id=after["_id"], entry_id=entry["_id"], change=change)
            if undone is None:
                log.error("could not undo stock change %+d on %s (units reserved meanwhile)", change, after["_id"])
                await self.repo.flush_history(product_id=after["_id"], entries=[entry])

    # availability

    async def check(self, *, items: list[QuantityLine]) -> dict[str, Any]:
        """Endpoints 19/20: per-line availability, read only."""
        found = {d["_id"]: d for d in await self.repo.get_products([i.productId for i in items])}
        rows = []
        for line in items:
            doc = found.get(line.productId)
            reason, available = self._availability(doc, line.quantity)
            rows.append(
                {
                    "productId": line.productId,
                    "productName": doc.get("name") if doc else None,
                    "available": reason == "Available",
                    "reason": reason,
                    "requestedQuantity": line.quantity,
                    "availableStock": available,
                    "totalStock": int(doc.get("totalStock", 0)) if doc else 0,
                    "reservedStock": int(doc.get("reservedStock", 0)) if doc else 0,
                }
            )
        ok_count = sum(r["available"] for r in rows)
        return {
            "allAvailable": ok_count == len(rows),
            "items": rows,
            "summary": {"total": len(rows), "available": ok_count, "unavailable": len(rows) - ok_count},
        }

    @staticmethod
    def _availability(doc: Mapping[str, Any] | None, quantity: int) -> tuple[str, int]:
        if doc is None or doc.get("status") == "deleted":
            return "Product not found", 0
        if not is_public(doc):
            return "Product not available", 0
        stock = int(doc.get("stock", 0))
        return ("Available" if stock >= quantity else "Insufficient stock"), stock

    # reservations

    async def reserve(
        self, *, order_id: str, customer_id: str | None, items: list[ReserveLine], minutes: float | None
    ) -> Reserved:
        """Endpoint 21: reserve every line or none; idempotent per ``order_id``."""
        minutes = minutes or self.settings.RESERVATION_DEFAULT_MINUTES
        expires_at = now_iso(timedelta(minutes=minutes))
        requested = [{"productId": i.productId, "quantity": i.quantity, "unitPriceCents": i.unitPrice} for i in items]
        claimed, doc = await self._claim(order_id, customer_id, requested, expires_at)
        if not claimed:
            return Reserved(self._reservation_view(doc, minutes=None), existing=True)
        now = now_iso()
        applied: list[dict[str, Any]] = []
        successful: list[dict[str, Any]] = []
        for index, line in enumerate(requested):
            entry = {
                "orderId": order_id, "customerId": customer_id, "quantity": line["quantity"],
                "unitPriceCents": line["unitPriceCents"], "reservedAt": now, "expiresAt": expires_at,
            }  # fmt: skip
            after = await self.repo.reserve_line(
                product_id=line["productId"], order_id=order_id, quantity=line["quantity"], entry=entry
            )
            if after is None:
                await self._fail_reservation(order_id, applied)
                raise await self._reserve_conflict(order_id, requested, index)
            unit = line["unitPriceCents"] if line["unitPriceCents"] is not None else int(after["priceCents"])
            applied.append({**line, "unitPriceCents": unit, "productName": after.get("name")})
            successful.append(
                {
                    "productId": line["productId"],
                    "reserved": line["quantity"],
                    "availableAfterReservation": int(after["stock"]),
                    "expiresAt": expires_at,
                }  # fmt: skip
            )
        done = await self.repo.move_reservation(
            order_id=order_id, status="pending", fields={"status": "active", "items": applied, "reservedAt": now}
        )
        if done is None:
            # Swept as stale meanwhile (only after minutes of silence): its lines were given back.
            for line in applied:
                await self._return_reserved(order_id, line)
            raise Conflict("Reservation for this order is no longer active")
        view = self._reservation_view(done, minutes=minutes)
        view["successful"] = successful
        return Reserved(view)

    async def _fail_reservation(self, order_id: str, applied: list[dict[str, Any]]) -> None:
        for line in reversed(applied):
            await self._return_reserved(order_id, line)
        await self.repo.move_reservation(
            order_id=order_id, status="pending", fields={"status": "failed", "settled": True, "failedAt": now_iso()}
        )

    async def _claim(
        self, order_id: str, customer_id: str | None, requested: list[dict[str, Any]], expires_at: str
    ) -> tuple[bool, Document]:
        """Own the order's reservation document: (True, doc) when this call must reserve,
        (False, doc) when an active or confirmed reservation already exists."""
        fields = {
            "customerId": customer_id, "items": requested, "status": "pending", "settled": False,
            "expiresAt": expires_at, "claimedAt": now_iso(),
        }  # fmt: skip
        waited = 0.0
        while True:
            try:
                return True, await self.repo.insert_reservation({"orderId": order_id, **fields})
            except DuplicateKeyError:
                existing = await self.repo.get_reservation(order_id)
            if existing is None:
                continue
            status = existing.get("status")
            if status in ("active", "confirmed"):
                return False, existing
            if status in ("cancelled", "expired"):
                raise Conflict("Reservation for this order is no longer active")
            if status == "failed" and existing.get("settled", True):
                retried = await self.repo.move_reservation(
                    order_id=order_id, status="failed", fields={**fields, "claimedAt": now_iso()}, settled=True
                )
                if retried is not None:
                    return True, retried
                continue
            if waited >= PENDING_WAIT_SECONDS:
                raise Conflict("Reservation for this order is being processed, please retry")
            await asyncio.sleep(0.05)
            waited += 0.05

    async def _reserve_conflict(self, order_id: str, requested: list[dict[str, Any]], failed_at: int) -> Conflict:
        """The 409 listing the failing line and every later line that is not available either."""
        found = {d["_id"]: d for d in await self.repo.get_products([r["productId"] for r in requested[failed_at:]])}
        failed, errors, parts = [], [], []
        for index in range(failed_at, len(requested)):
            line = requested[index]
            doc = found.get(line["productId"])
            reason, available = self._availability(doc, line["quantity"])
            if reason == "Available":
                if index != failed_at:
                    continue
                reason = "Insufficient stock"  # raced: it was short when the update ran
            name = doc.get("name") if doc else line["productId"]
            failed.append(
                {
                    "productId": line["productId"],
                    "productName": name,
                    "requestedQuantity": line["quantity"],
                    "availableStock": available,
                    "reason": reason,
                }  # fmt: skip
            )
            parts.append(f"{name} (requested: {line['quantity']}, available: {available})")
            if reason == "Insufficient stock":
                message = f"Insufficient stock. Available: {available}, Requested: {line['quantity']}"
                errors.append({"field": f"items.{index}.quantity", "message": message})
            else:
                errors.append({"field": f"items.{index}.productId", "message": reason})
        return Conflict(
            f"Some items are not available: {', '.join(parts)}",
            errors=errors,
            extra={"data": {"orderId": order_id, "failed": failed}},
        )

    @staticmethod
    def _reservation_view(doc: Mapping[str, Any], *, minutes: float | None) -> dict[str, Any]:
        reserved_at = doc.get("reservedAt") or doc.get("createdAt")
        lines = doc.get("items") or []
        items = [
            {
                "productId": i["productId"],
                "quantity": i["quantity"],
                "unitPrice": from_cents(int(i.get("unitPriceCents") or 0)),
                "reservedAt": reserved_at,
                "expiresAt": doc.get("expiresAt"),
            }  # fmt: skip
            for i in lines
        ]
        return {
            "orderId": doc["orderId"],
            "reservationId": doc["_id"],
            "customerId": doc.get("customerId"),
            "status": doc["status"],
            "expiresAt": doc.get("expiresAt"),
            "expirationMinutes": minutes,
            "items": items,
            "successful": [
                {"productId": i["productId"], "reserved": i["quantity"], "expiresAt": doc.get("expiresAt")}
                for i in lines
            ],
            "failed": [],
        }

    async def _return_reserved(self, order_id: str, line: Mapping[str, Any]) -> Document | None:
        """Reserved → available for one line, only if the order's entry is still on the product."""
        return await self.repo.return_reserved_line(
            product_id=line["productId"], order_id=order_id, quantity=int(line["quantity"])
        )

    async def _sell(self, doc: Mapping[str, Any], line: Mapping[str, Any]) -> Document | None:
        """Reserved → sold for one line (exactly once), then its ``sale`` entry (idempotent)."""
        order_id, quantity = doc["orderId"], int(line["quantity"])
        unit = int(line.get("unitPriceCents") or 0)
        after = await self.repo.sell_reserved_line(
            product_id=line["productId"], order_id=order_id, quantity=quantity, cents=unit * quantity
        )
        product = after or await self.repo.get_product(line["productId"])
        if product is not None:
            await self.catalogue.record_sale_entry(
                product=product, order_id=order_id, customer_id=doc.get("customerId"), quantity=quantity,
                unit_cents=unit, total_cents=unit * quantity,
            )  # fmt: skip
        return after

    async def _unsell(self, doc: Mapping[str, Any], line: Mapping[str, Any], reason: str) -> Document | None:
        """Sold → available for one confirmed line, at most once.

        The return entry is written first under a key derived from (order, product): it is
        the marker that makes the change happen once (a retry finds it and stops); its stock
        figures are filled in after the conditional update."""
        order_id, quantity = doc["orderId"], int(line["quantity"])
        cents = int(line.get("unitPriceCents") or 0) * quantity
        product = await self.repo.get_product(line["productId"])
        if product is None:
            return None
        marker = _marker_id("return", order_id, product["_id"])
        entry = stock_entry(
            product, 0, quantity, notes=f"Returned to stock: {reason}", entry_id=marker,
            orderId=order_id, customerId=doc.get("customerId"),
        )  # fmt: skip
        entry.update(previousValue=None, newValue=None, previousStock=None, newStock=None)
        if not await self.repo.add_history_once(entry):
            return None
        after = await self.repo.unsell(product_id=product["_id"], quantity=quantity, cents=cents)
        if after is not None:
            new = int(after["stock"])
            await self.repo.set_history_stock(entry_id=marker, previous=new - quantity, new=new)
            await self.repo.mark_sale_returned(entry_id=sale_entry_id(order_id, product["_id"]))
        return after

    async def confirm(self, *, order_id: str) -> Confirmed:
        """Endpoint 22: reserved → sold for every line of an active reservation."""
        doc = await self.repo.get_reservation(order_id)
        if doc is None:
            raise NotFound("Reservation not found")
        if doc["status"] == "active":
            if doc["expiresAt"] < now_iso():
                await self._expire(doc)
                raise Conflict(NO_LONGER_ACTIVE)
            won = await self.repo.move_reservation(
                order_id=order_id, status="active",
                fields={"status": "confirmed", "confirmedAt": now_iso(), "settled": False},
            )  # fmt: skip
            if won is not None:
                return Confirmed(await self._finish_confirm(won))
            doc = await self.repo.get_reservation(order_id) or doc
        if doc["status"] == "confirmed":
            return Confirmed(await self._finish_confirm(doc), already=True)
        raise Conflict(NO_LONGER_ACTIVE)

    async def _finish_confirm(self, doc: Document) -> dict[str, Any]:
        successful = []
        for line in doc.get("items") or []:
            after = await self._sell(doc, line) or await self.repo.get_product(line["productId"])
            successful.append(
                {
                    "productId": line["productId"],
                    "confirmed": line["quantity"],
                    "newSoldStock": int(after["soldStock"]) if after else None,
                }  # fmt: skip
            )
        await self.repo.move_reservation(order_id=doc["orderId"], status="confirmed", fields={"settled": True})
        return {"orderId": doc["orderId"], "status": "confirmed", "successful": successful, "failed": []}

    async def release(self, *, order_id: str, reason: str | None) -> dict[str, Any]:
        """Endpoint 23: give an order's reserved or sold units back (idempotent)."""
        reason = reason or "Order cancelled"
        waited = 0.0
        while True:
            doc = await self.repo.get_reservation(order_id)
            if doc is None or doc["status"] not in ("pending", "active", "confirmed"):
                status = doc["status"] if doc else "cancelled"
                return {"orderId": order_id, "reason": reason, "status": status, "results": []}
            if doc["status"] != "pending":
                break
            if waited >= PENDING_WAIT_SECONDS:
                raise Conflict("Reservation for this order is being processed, please retry")
            await asyncio.sleep(0.05)
            waited += 0.05
        was = doc["status"]
        won = await self.repo.move_reservation(
            order_id=order_id,
            status=was,
            fields={
                "status": "cancelled",
                "cancelledAt": now_iso(),
                "cancelReason": reason,
                "settled": False,
                "cancelledFrom": was,
            },  # fmt: skip
        )
        if won is None:
            return await self.release(order_id=order_id, reason=reason)
        results = await self._give_back(won, reason)
        return {"orderId": order_id, "reason": reason, "status": "cancelled", "results": results}

    async def _give_back(self, doc: Document, reason: str) -> list[dict[str, Any]]:
        """Return every line of a cancelled/expired/failed reservation, then mark it settled."""
        results = []
        for line in doc.get("items") or []:
            after = await self._return_reserved(doc["orderId"], line)
            if after is None and doc.get("cancelledFrom") == "confirmed":
                after = await self._unsell(doc, line, reason)
            if after is not None:
                results.append({"productId": line["productId"], "released": True, "newAvailableStock": after["stock"]})
        await self.repo.move_reservation(order_id=doc["orderId"], status=doc["status"], fields={"settled": True})
        return results

    async def _expire(self, doc: Mapping[str, Any]) -> bool:
        won = await self.repo.expire_reservation(
            order_id=doc["orderId"],
            now=now_iso(),
            fields={"status": "expired", "expiredAt": now_iso(), "settled": False},
        )
        if won is None:
            return False
        await self._give_back(won, "Reservation expired")
        return True

    async def cleanup_expired(self) -> int:
        """Endpoint 24 and the background task: expire overdue reservations, finish interrupted
        ones (and stock changes whose history entry was not copied yet)."""
        now = now_iso()
        cleaned = 0
        for doc in await self.repo.reservations_due(now=now):
            if doc["status"] == "active":
                cleaned += await self._expire(doc)
            elif doc.get("claimedAt", now) < now_iso(-STALE_PENDING):
                won = await self.repo.move_reservation(
                    order_id=doc["orderId"], status="pending",
                    fields={"status": "failed", "failedAt": now_iso(), "settled": False}, claimedAt=doc["claimedAt"],
                )  # fmt: skip
                if won is not None:
                    await self._give_back(won, "Reservation abandoned")
        for doc in await self.repo.reservations_unsettled():
            if doc["status"] == "confirmed":
                await self._finish_confirm(doc)
            else:
                await self._give_back(doc, doc.get("cancelReason") or "Reservation expired")
        await self.repo.flush_pending_history()
        return cleaned

    # background task

    async def start(self) -> None:
        """Finish interrupted stock changes, then run the expiry task."""
        await self.repo.flush_pending_history()
        if self.settings.RESERVATION_CLEANUP_SECONDS > 0 and self._task is None:
            self._task = asyncio.create_task(self._run(), name="products-reservation-cleanup")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.settings.RESERVATION_CLEANUP_SECONDS)
            try:
                async with self._sweep_lease.held() as mine:
                    cleaned = await self.cleanup_expired() if mine else 0
                if cleaned:
                    log.info("released %d expired reservations", cleaned)
            except Exception:
                log.exception("reservation cleanup failed")
