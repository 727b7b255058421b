"""How customers and addresses are answered (contract §2.4)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.validation import fields_of, from_cents

PREFERENCE_DEFAULTS = {"newsletter": False, "smsNotifications": False, "language": "en", "currency": "USD"}


def customer_view(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The public customer view: never a hash or a token."""
    return {
        "id": doc["_id"],
        **fields_of(doc, "firstName", "lastName", "email", "phone", "dateOfBirth", "gender", "profileImage"),
        "preferences": {**PREFERENCE_DEFAULTS, **(doc.get("preferences") or {})},
        "isActive": bool(doc.get("isActive", True)),
        "isVerified": bool(doc.get("isVerified", False)),
        "emailVerified": bool(doc.get("emailVerified", False)),
        "phoneVerified": bool(doc.get("phoneVerified", False)),
        "totalOrders": int(doc.get("totalOrders", 0)),
        "totalSpent": from_cents(int(doc.get("totalSpentCents", 0))),
        "loyaltyPoints": int(doc.get("loyaltyPoints", 0)),
        **fields_of(doc, "lastLogin", "createdAt", "updatedAt"),
    }


def admin_customer_view(doc: Mapping[str, Any], addresses: list[dict[str, Any]]) -> dict[str, Any]:
    """The admin details view: the customer view plus addresses and the closing fields."""
    return {
        **customer_view(doc),
        "addresses": addresses,
        **fields_of(doc, "deactivatedAt", "deactivationReason", "deletedAt"),
    }


ADDRESS_FIELDS = (
    "type", "label", "addressLine1", "addressLine2", "city", "state", "country", "postalCode", "contactName",
    "contactPhone", "firstName", "lastName", "company", "landmark", "deliveryInstructions", "coordinates",
)  # fmt: skip


def full_address(doc: Mapping[str, Any]) -> str:
    parts = ("addressLine1", "addressLine2", "city", "state", "country", "postalCode")
    return ", ".join(str(doc[p]) for p in parts if doc.get(p))


def address_view(doc: Mapping[str, Any], default_id: str | None) -> dict[str, Any]:
    """The address view; ``isDefault`` is derived from the owner's ``defaultAddressId``."""
    view: dict[str, Any] = {"id": doc["_id"], "customerId": doc["customerId"]}
    for field in ADDRESS_FIELDS:
        view[field] = doc.get(field)
    view["type"] = view["type"] or "home"
    view["isDefault"] = doc["_id"] == default_id
    view["isActive"] = bool(doc.get("isActive", True))
    view["fullAddress"] = full_address(doc)
    view["street"] = doc.get("addressLine1")
    view["street2"] = doc.get("addressLine2")
    view["phone"] = doc.get("contactPhone")
    view["createdAt"] = doc.get("createdAt")
    view["updatedAt"] = doc.get("updatedAt")
    return view


def sorted_address_views(docs: list[Mapping[str, Any]], default_id: str | None) -> list[dict[str, Any]]:
    """Default first, then newest ``createdAt``."""
    ordered = sorted(docs, key=lambda d: d.get("createdAt") or "", reverse=True)
    ordered.sort(key=lambda d: d["_id"] != default_id)
    return [address_view(d, default_id) for d in ordered]
