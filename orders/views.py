"""How carts, orders and outbox rows are answered (contract §2 "Order JSON", §4.1, §4.17).

Stored money is integer cents; answered money is a JSON number with two decimals.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from shared.validation import fields_of, from_cents

CENT = Decimal(1)
_ORDER_TIMES = (
    "placedAt", "confirmedAt", "shippedAt", "deliveredAt", "cancelledAt", "reservationExpiry", "createdAt", "updatedAt",
)  # fmt: skip


def cents_of(amount: Decimal) -> int:
    """A Decimal amount of money as integer cents, rounded half-up."""
    return int((amount * 100).quantize(CENT, rounding=ROUND_HALF_UP))


def money_text(cents: int) -> str:
    """Cents as a string with two decimals (amounts in email data)."""
    return f"{Decimal(cents) / 100:.2f}"


def cart_item_view(item: Mapping[str, Any]) -> dict[str, Any]:
    price = int(item.get("priceCents", 0))
    quantity = int(item.get("quantity", 0))
    return {
        "productId": item["productId"],
        **fields_of(item, "sellerId", "productName", "productImage"),
        "quantity": quantity,
        "price": from_cents(price),
        "totalPrice": from_cents(price * quantity),
        "availableStock": int(item.get("availableStock", 0)),
        "addedAt": item.get("addedAt"),
        "updatedAt": item.get("updatedAt"),
    }


def cart_view(cart: Mapping[str, Any], *, refreshed: bool | None = None) -> dict[str, Any]:
    items = cart.get("items") or []
    view: dict[str, Any] = {
        "id": cart["_id"],
        "customerId": cart["customerId"],
        "items": [cart_item_view(i) for i in items],
        "totalItems": sum(int(i.get("quantity", 0)) for i in items),
        "totalAmount": from_cents(sum(int(i.get("priceCents", 0)) * int(i.get("quantity", 0)) for i in items)),
        "createdAt": cart.get("createdAt"),
        "updatedAt": cart.get("updatedAt"),
    }
    if refreshed is not None:
        view["refreshed"] = refreshed
    return view


def _item_view(item: Mapping[str, Any]) -> dict[str, Any]:
    unit = from_cents(int(item["unitPriceCents"]))
    return {
        "productId": item["productId"],
        **fields_of(item, "sellerId", "productName", "productImage"),
        "quantity": int(item["quantity"]),
        "unitPrice": unit,
        "price": unit,
        "totalPrice": from_cents(int(item["totalPriceCents"])),
        "status": item.get("status", "reserved"),
    }


def order_view(doc: Mapping[str, Any], *, seller_id: str | None = None) -> dict[str, Any]:
    """The order object; with ``seller_id`` the seller view (that seller's items and amounts,
    no customer email, ``sellerView: true``)."""
    items = doc.get("items") or []
    if seller_id is not None:
        items = [i for i in items if i.get("sellerId") == seller_id]
        subtotal = sum(int(i["totalPriceCents"]) for i in items)
        amounts = {
            "subtotal": from_cents(subtotal),
            "tax": 0.0,
            "shippingFee": 0.0,
            "totalAmount": from_cents(subtotal),
        }
    else:
        amounts = {
            "subtotal": from_cents(int(doc.get("subtotalCents", 0))),
            "tax": from_cents(int(doc.get("taxCents", 0))),
            "shippingFee": from_cents(int(doc.get("shippingFeeCents", 0))),
            "totalAmount": from_cents(int(doc.get("totalAmountCents", 0))),
        }
    customer_info: dict[str, Any] = {"name": doc.get("customerName")}
    view: dict[str, Any] = {
        "id": doc["_id"],
        "_id": doc["_id"],
        "orderNumber": doc["orderNumber"],
        "customerId": doc["customerId"],
        "customerName": doc.get("customerName"),
    }
    if seller_id is None:
        view["customerEmail"] = doc.get("customerEmail")
        customer_info["email"] = doc.get("customerEmail")
    view.update(
        {
            "customerInfo": customer_info,
            "items": [_item_view(i) for i in items],
            "itemCount": sum(int(i["quantity"]) for i in items),
            "sellers": list(doc.get("sellerIds") or []),
            **amounts,
            "status": doc["status"],
            "paymentMethod": doc.get("paymentMethod", "cod"),
            "paymentStatus": doc.get("paymentStatus", "pending"),
            "shippingAddress": dict(doc.get("shippingAddress") or {}),
            "notes": doc.get("notes"),
            "cancelReason": doc.get("cancelReason"),
            "statusHistory": [
                {"status": h["status"], "at": h["at"], "notes": h.get("notes"), "by": h.get("by")}
                for h in doc.get("statusHistory") or []
            ],
            **fields_of(doc, *_ORDER_TIMES),
        }
    )
    if seller_id is not None:
        view["sellerView"] = True
    return view


def outbox_entry_view(row: Mapping[str, Any]) -> dict[str, Any]:
    payload = row.get("payload") or {}
    view: dict[str, Any] = {
        "id": row["_id"],
        "kind": row.get("kind"),
        "dedupeKey": row.get("dedupeKey"),
        "orderId": payload.get("orderId"),
        "status": row.get("status"),
        "attempts": int(row.get("attempts", 0)),
        **fields_of(row, "nextAttemptAt", "lastError", "createdAt", "sentAt"),
    }
    if payload.get("template"):
        view["template"] = payload["template"]
    return view
