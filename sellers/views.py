"""How sellers and their businesses are answered (contract §2.4, 4.13, 4.15)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.validation import fields_of

ADDRESS_FIELDS = ("street", "street2", "city", "state", "country", "postalCode")


def address_view(address: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not address:
        return None
    return {field: address.get(field) for field in ADDRESS_FIELDS}


def full_name(doc: Mapping[str, Any]) -> str:
    return f"{doc.get('firstName', '')} {doc.get('lastName', '')}".strip()


def _identity(doc: Mapping[str, Any], business: Mapping[str, Any]) -> dict[str, Any]:
    """What every seller answer starts with: id, names, contact, business name and type."""
    return {
        "id": doc["_id"],
        **fields_of(doc, "firstName", "lastName"),
        "fullName": full_name(doc),
        **fields_of(doc, "email", "phone"),
        **fields_of(business, "businessName", "businessType"),
    }


def seller_view(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The seller view: business fields are read from the embedded business, never a secret."""
    business = doc.get("business") or {}
    return {
        **_identity(doc, business),
        "businessDescription": business.get("description"),
        "address": address_view(business.get("address")),
        **fields_of(doc, "profileImage", "dateOfBirth", "gender"),
        "role": "seller",
        "isActive": bool(doc.get("isActive", True)),
        "isVerified": bool(doc.get("isVerified", False)),
        "rating": doc.get("rating", 0),
        "totalSales": int(doc.get("totalSales", 0)),
        "totalProducts": int(doc.get("totalProducts", 0)),
        **fields_of(doc, "lastLogin", "createdAt", "updatedAt"),
    }


def business_view(doc: Mapping[str, Any]) -> dict[str, Any] | None:
    """The business view of a seller document, or None when it has no business."""
    business = doc.get("business")
    if not business:
        return None
    return {
        "id": business["_id"],
        "sellerId": doc["_id"],
        **fields_of(business, "businessName", "businessType", "description", "email", "phone", "website", "industry"),
        "categories": list(business.get("categories") or []),
        **fields_of(business, "establishedDate", "employeeCount", "logoMediaId"),
        "address": address_view(business.get("address")),
        "verificationStatus": business.get("verificationStatus", "pending"),
        "verifiedAt": business.get("verifiedAt"),
        "isActive": bool(business.get("isActive", True)),
        "createdAt": business.get("createdAt"),
        "updatedAt": business.get("updatedAt"),
    }


def profile_view(doc: Mapping[str, Any]) -> dict[str, Any]:
    """``{seller, business}`` as profile answers carry it."""
    return {"seller": seller_view(doc), "business": business_view(doc)}


def admin_details_view(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The admin details (4.13): the profile plus the lock state and ``deactivatedAt``."""
    seller = seller_view(doc)
    seller.update(
        loginAttempts=int(doc.get("loginAttempts", 0)),
        lockUntil=doc.get("lockUntil"),
        deactivatedAt=doc.get("deactivatedAt"),
    )
    return {"seller": seller, "business": business_view(doc)}


def bulk_view(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The basic info other services get from ``service/bulk`` (4.15)."""
    business = doc.get("business") or {}
    return {
        "_id": doc["_id"],
        **_identity(doc, business),
        "logo": business.get("logoMediaId"),
        "business": (
            {
                "businessName": business.get("businessName"),
                "businessType": business.get("businessType"),
                "address": address_view(business.get("address")),
            }
            if business
            else None
        ),
        "isVerified": bool(doc.get("isVerified", False)),
        "createdAt": doc.get("createdAt"),
    }
