"""How products, history entries and inventories are answered (contract §2).

Stored money is integer cents; answers carry numbers with two decimals. ``searchText``,
``revenueCents`` and ``reservations`` are never shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from products.levels import stock_change_type, stock_level
from shared.timeutil import now_iso
from shared.validation import fields_of, from_cents


def _money(cents: Any) -> float | None:
    return None if cents is None else from_cents(int(cents))


def primary_image(images: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((image for image in images if image.get("isPrimary")), images[0] if images else None)


def product_view(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The product object of the contract."""
    images = list(doc.get("images") or [])
    level = doc.get("stockLevel") or stock_level(int(doc.get("stock", 0)), int(doc.get("lowStockAlert", 5)))
    status = doc.get("status", "active")
    return {
        "_id": doc["_id"],
        "id": doc["_id"],
        "name": doc.get("name"),
        "description": doc.get("description", ""),
        "price": _money(doc.get("priceCents", 0)),
        "comparePrice": _money(doc.get("comparePriceCents")),
        **fields_of(doc, "category", "subcategory", "sellerId"),
        "images": images,
        "primaryImage": primary_image(images),
        "specifications": doc.get("specifications") or {},
        "tags": doc.get("tags") or [],
        "stock": int(doc.get("stock", 0)),
        "totalStock": int(doc.get("totalStock", 0)),
        "reservedStock": int(doc.get("reservedStock", 0)),
        "soldStock": int(doc.get("soldStock", 0)),
        "lowStockAlert": int(doc.get("lowStockAlert", 5)),
        "stockLevel": level,
        "isLowStock": level == "low",
        "isOutOfStock": level == "out",
        "status": status,
        "isActive": status == "active",
        "sellerActive": bool(doc.get("sellerActive", True)),
        "totalSold": int(doc.get("totalSold", 0)),
        "revenue": from_cents(int(doc.get("revenueCents", 0))),
        "createdAt": doc.get("createdAt"),
        "updatedAt": doc.get("updatedAt"),
    }


def bulk_view(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The slim purchasable-product shape of ``POST /service/products/bulk``."""
    images = list(doc.get("images") or [])
    primary = primary_image(images)
    return {
        "id": doc["_id"],
        "_id": doc["_id"],
        "name": doc.get("name"),
        "price": from_cents(int(doc.get("priceCents", 0))),
        "stock": int(doc.get("stock", 0)),
        "sellerId": doc.get("sellerId"),
        "primaryImageId": primary.get("media_id") if primary else None,
        "category": doc.get("category"),
        "lowStockAlert": int(doc.get("lowStockAlert", 5)),
        "images": images,
    }


HISTORY_FIELDS = (
    "productId", "sellerId", "type", "previousValue", "newValue", "quantity", "orderId", "customerId", "notes",
    "metadata", "previousStock", "newStock", "previousPrice", "newPrice", "previousStatus", "newStatus", "createdAt",
)  # fmt: skip


def history_view(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A history entry, shown with ``id`` (typed mirrors only where the entry has them)."""
    view: dict[str, Any] = {"id": doc["_id"]}
    for field in HISTORY_FIELDS:
        if field in doc:
            view[field] = doc[field]
    if view.get("type") == "stock_update":  # a legacy entry not migrated yet: by its sign
        view["type"] = stock_change_type(int(doc.get("quantity") or 0))
    return view


def reservation_line_view(line: Mapping[str, Any], now: str) -> dict[str, Any]:
    return {
        "orderId": line.get("orderId"),
        "customerId": line.get("customerId"),
        "quantity": int(line.get("quantity", 0)),
        "reservedAt": line.get("reservedAt"),
        "expiresAt": line.get("expiresAt"),
        "status": "active",
        "isExpired": bool(line.get("expiresAt")) and line["expiresAt"] < now,
    }


def inventory_view(doc: Mapping[str, Any], *, with_reservations: bool = True) -> dict[str, Any]:
    """The stock counters of one product (endpoint 10; 11 and 27 without ``reservations``)."""
    product = product_view(doc)
    lines = list(doc.get("reservations") or [])
    view: dict[str, Any] = {
        "productId": doc["_id"],
        "sellerId": doc.get("sellerId"),
        "totalStock": product["totalStock"],
        "reservedStock": product["reservedStock"],
        "soldStock": product["soldStock"],
        "availableStock": product["stock"],
        "isOutOfStock": product["isOutOfStock"],
        "isLowStock": product["isLowStock"],
        "lowStockThreshold": product["lowStockAlert"],
        "activeReservations": len(lines),
    }
    if with_reservations:
        now = now_iso()
        view["reservations"] = [reservation_line_view(line, now) for line in lines]
    view["lastUpdated"] = doc.get("updatedAt")
    return view


def inventory_row_view(doc: Mapping[str, Any]) -> dict[str, Any]:
    """One row of a seller's inventory overview (endpoint 12)."""
    inventory = inventory_view(doc, with_reservations=False)
    return {
        "productId": doc["_id"],
        "productName": doc.get("name"),
        "productCategory": doc.get("category"),
        "productPrice": from_cents(int(doc.get("priceCents", 0))),
        **{
            k: inventory[k]
            for k in (
                "totalStock",
                "reservedStock",
                "soldStock",
                "availableStock",
                "isOutOfStock",
                "isLowStock",
                "lowStockThreshold",
                "activeReservations",
            )
        },  # fmt: skip
    }
