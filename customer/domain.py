"""The rules of the customer service: accounts, tokens, profile, addresses, statistics.

No HTTP types here; errors are the shared ``AppError`` subclasses, raised with the
contract's messages. Every state change that must not race is one conditional update.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from customer.repository import CustomerRepository
from customer.schemas import AddressIn, ProfileUpdateIn, RegisterIn, address_field_errors
from customer.settings import CustomerSettings
from customer.views import (
    ADDRESS_FIELDS,
    address_view,
    admin_customer_view,
    customer_view,
    sorted_address_views,
)
from shared.accounts import ACCOUNT_DEACTIVATED, AccountTokens, new_secret_token, sha256_hex
from shared.outbox import Outbox, OutboxRequest
from shared.passwords import hash_password, verify_dummy, verify_password
from shared.responses import BadRequest, Conflict, Forbidden, NotFound, Unauthorized, ValidationFailed
from shared.store import Document, DuplicateKeyError
from shared.timeutil import now_iso
from shared.validation import from_cents, pagination, to_cents

CUSTOMER_NOT_FOUND = "Customer not found"
ADDRESS_NOT_FOUND = "Address not found"

SORTABLE = {
    "createdAt": "createdAt",
    "firstName": "firstName",
    "lastName": "lastName",
    "email": "email",
    "lastLogin": "lastLogin",
    "totalSpent": "totalSpentCents",
}

EMAIL_KIND = "email"
MEDIA_KIND = "media_mark_used"
NOTIFY_PERMANENT = frozenset({502})


class Customers:
    """The customer service's use cases. Built once per app; methods are keyword-only."""

    def __init__(self, *, repo: CustomerRepository, outbox: Outbox, settings: CustomerSettings) -> None:
        self.repo = repo
        self.outbox = outbox
        self.settings = settings
        self.tokens = AccountTokens(settings, repo.refresh_tokens, role="customer")

    async def authenticate(self, *, claims: Mapping[str, Any]) -> Document:
        """The customer behind verified access-token ``claims``: role → exists → active → ``ver``."""
        return await self.tokens.authenticate(claims, self.repo.get_customer)

    # registration and sign-in

    async def register(self, *, data: RegisterIn) -> dict[str, Any]:
        if data.confirmPassword is not None and data.confirmPassword != data.password:
            raise ValidationFailed.field("confirmPassword", "Passwords do not match", top="Passwords do not match")
        password_hash = await hash_password(data.password, rounds=self.settings.BCRYPT_ROUNDS)
        doc = {
            "firstName": data.firstName,
            "lastName": data.lastName,
            "email": data.email,
            "passwordHash": password_hash,
            "phone": data.phone,
            "dateOfBirth": data.dateOfBirth,
            "gender": data.gender,
            "profileImage": None,
            "preferences": {"newsletter": False, "smsNotifications": False, "language": "en", "currency": "USD"},
            "isActive": True,
            "isVerified": False,
            "emailVerified": False,
            "phoneVerified": False,
            "totalOrders": 0,
            "totalSpentCents": 0,
            "loyaltyPoints": 0,
            "defaultAddressId": None,
            "tokenVersion": 0,
            "lastLogin": None,
            "passwordChangedAt": None,
            "deactivatedAt": None,
            "deactivationReason": None,
            "deletedAt": None,
        }
        try:
            customer = await self.repo.insert_customer(doc)
        except DuplicateKeyError:
            raise Conflict(
                "Customer with this email already exists",
                errors=[{"field": "email", "message": "Email already exists"}],
            ) from None
        tokens = await self.tokens.issue(customer)
        await self._queue_email("welcome_customer", customer["_id"])
        await self._queue_email("email_verification", customer["_id"])
        return {"customer": customer_view(customer), **tokens}

    async def login(self, *, email: str, password: str) -> dict[str, Any]:
        customer = await self.repo.get_by_email(email)
        if customer is None:
            await verify_dummy(password, rounds=self.settings.BCRYPT_ROUNDS)
            raise Unauthorized("Invalid credentials")
        if not await verify_password(password, customer["passwordHash"]):
            raise Unauthorized("Invalid credentials")
        if not customer.get("isActive", True):
            raise Forbidden(ACCOUNT_DEACTIVATED)
        customer = await self.repo.update_customer({"_id": customer["_id"]}, set_fields={"lastLogin": now_iso()})
        assert customer is not None
        tokens = await self.tokens.issue(customer)
        return {"customer": customer_view(customer), **tokens}

    async def refresh(self, *, refresh_token: str) -> dict[str, str]:
        return await self.tokens.rotate(refresh_token, self.repo.get_customer)

    # passwords and verification

    async def forgot_password(self, *, email: str) -> None:
        customer = await self.repo.get_by_email(email)
        if customer is not None and customer.get("isActive", True):
            await self._queue_email("password_reset", customer["_id"])

    async def reset_password(self, *, token: str, new_password: str, confirm: str | None) -> None:
        if confirm is not None and confirm != new_password:
            raise ValidationFailed.field("confirmPassword", "Passwords do not match", top="Passwords do not match")
        password_hash = await hash_password(new_password, rounds=self.settings.BCRYPT_ROUNDS)
        now = now_iso()
        customer = await self.repo.update_customer(
            {"passwordResetTokenHash": sha256_hex(token), "passwordResetExpires": {"$gt": now}},
            set_fields={"passwordHash": password_hash, "passwordChangedAt": now},
            unset=("passwordResetTokenHash", "passwordResetExpires"),
            inc={"tokenVersion": 1},
        )
        if customer is None:
            raise BadRequest("Invalid or expired reset token")
        await self.repo.refresh_tokens.revoke_all(customer["_id"])

    async def change_password(
        self, *, customer: Document, current: str, new_password: str, confirm: str
    ) -> dict[str, str]:
        if confirm != new_password:
            raise ValidationFailed.field("confirmPassword", "Passwords do not match", top="Passwords do not match")
        if not await verify_password(current, customer["passwordHash"]):
            raise BadRequest("Current password is incorrect")
        password_hash = await hash_password(new_password, rounds=self.settings.BCRYPT_ROUNDS)
        updated = await self.repo.update_customer(
            {"_id": customer["_id"], "isActive": True},
            set_fields={"passwordHash": password_hash, "passwordChangedAt": now_iso()},
            inc={"tokenVersion": 1},
        )
        if updated is None:
            raise Forbidden(ACCOUNT_DEACTIVATED)
        await self.repo.refresh_tokens.revoke_all(customer["_id"])
        return await self.tokens.issue(updated)

    async def verify_email(self, *, token: str) -> dict[str, Any]:
        customer = await self.repo.update_customer(
            {"emailVerificationTokenHash": sha256_hex(token), "emailVerificationExpires": {"$gt": now_iso()}},
            set_fields={"isVerified": True, "emailVerified": True},
            unset=("emailVerificationTokenHash", "emailVerificationExpires"),
        )
        if customer is None:
            raise BadRequest("Invalid or expired verification token")
        return {"email": customer["email"], "isVerified": True, "emailVerified": True}

    async def resend_verification(self, *, email: str) -> None:
        customer = await self.repo.get_by_email(email)
        if customer is not None and customer.get("isActive", True) and not customer.get("isVerified"):
            await self._queue_email("email_verification", customer["_id"])

    # account state

    async def deactivate(self, *, customer: Document, password: str, reason: str | None) -> None:
        if not await verify_password(password, customer["passwordHash"]):
            raise BadRequest("Password is incorrect")
        await self._close(customer["_id"], reason=reason, deleted=False)

    async def close_account(self, *, customer: Document) -> None:
        await self._close(customer["_id"], reason=None, deleted=True)

    async def _close(self, customer_id: str, *, reason: str | None, deleted: bool) -> Document | None:
        now = now_iso()
        fields: dict[str, Any] = {"isActive": False, "deactivatedAt": now}
        if reason is not None or not deleted:
            fields["deactivationReason"] = reason
        if deleted:
            fields["deletedAt"] = now
        updated = await self.repo.update_customer({"_id": customer_id}, set_fields=fields, inc={"tokenVersion": 1})
        await self.repo.refresh_tokens.revoke_all(customer_id)
        return updated

    async def set_status(self, *, customer_id: str, active: bool) -> dict[str, Any]:
        if active:
            # Activation leaves tokenVersion alone: tokens issued before the deactivation keep
            # their old ``ver`` and stay refused.
            updated = await self.repo.update_customer(
                {"_id": customer_id}, set_fields={"isActive": True, "deactivatedAt": None}
            )
        else:
            current = await self.repo.get_customer(customer_id)
            if current is None:
                raise NotFound(CUSTOMER_NOT_FOUND)
            updated = current
            if current.get("isActive", True):
                updated = await self._close(customer_id, reason=current.get("deactivationReason"), deleted=False)
        if updated is None:
            raise NotFound(CUSTOMER_NOT_FOUND)
        return customer_view(updated)

    # profile

    async def get_customer(self, *, customer_id: str) -> Document:
        customer = await self.repo.get_customer(customer_id)
        if customer is None:
            raise NotFound(CUSTOMER_NOT_FOUND)
        return customer

    async def update_profile(self, *, customer: Document, data: ProfileUpdateIn) -> dict[str, Any]:
        sent = data.model_fields_set
        fields: dict[str, Any] = {}
        for name in ("firstName", "lastName", "phone", "dateOfBirth", "gender", "profileImage"):
            if name in sent:
                fields[name] = getattr(data, name)
        if "preferences" in sent and data.preferences is not None:
            for key in data.preferences.model_fields_set:
                value = getattr(data.preferences, key)
                if value is not None:
                    fields[f"preferences.{key}"] = value
        if not fields:
            return customer_view(customer)
        updated = await self.repo.update_customer({"_id": customer["_id"]}, set_fields=fields)
        if updated is None:
            raise NotFound(CUSTOMER_NOT_FOUND)
        image = fields.get("profileImage")
        if image and image != customer.get("profileImage") and not image.startswith(("http://", "https://")):
            await self._queue(MEDIA_KIND, f"media:{image}", {"mediaId": image})
        return customer_view(updated)

    # addresses

    async def list_addresses(self, *, customer_id: str) -> list[dict[str, Any]]:
        customer = await self.get_customer(customer_id=customer_id)
        docs = await self.repo.list_addresses(customer_id)
        return sorted_address_views(docs, customer.get("defaultAddressId"))

    async def get_address(self, *, customer_id: str, address_id: str) -> dict[str, Any]:
        customer = await self.get_customer(customer_id=customer_id)
        doc = await self.repo.get_address(customer_id, address_id)
        if doc is None:
            raise NotFound(ADDRESS_NOT_FOUND)
        return address_view(doc, customer.get("defaultAddressId"))

    async def add_address(self, *, customer: Document, data: AddressIn) -> dict[str, Any]:
        _raise_address_errors(data, partial=False)
        fields = _address_fields(data, partial=False)
        doc = await self.repo.insert_address({"customerId": customer["_id"], **fields})
        if data.isDefault:
            default_id = await self._make_default(customer["_id"], doc["_id"])
        else:
            # The first address becomes the default; the condition makes two concurrent
            # first adds produce exactly one default.
            won = await self.repo.update_customer(
                {"_id": customer["_id"], "defaultAddressId": None}, set_fields={"defaultAddressId": doc["_id"]}
            )
            default_id = (
                doc["_id"] if won else (await self.get_customer(customer_id=customer["_id"])).get("defaultAddressId")
            )
        return address_view(doc, default_id)

    async def update_address(self, *, customer: Document, address_id: str, data: AddressIn) -> dict[str, Any]:
        _raise_address_errors(data, partial=True)
        fields = _address_fields(data, partial=True)
        if fields:
            doc = await self.repo.update_address(customer["_id"], address_id, set_fields=fields)
        else:
            doc = await self.repo.get_address(customer["_id"], address_id)
        if doc is None:
            raise NotFound(ADDRESS_NOT_FOUND)
        default_id = customer.get("defaultAddressId")
        if data.isDefault:
            default_id = await self._make_default(customer["_id"], address_id)
        else:
            default_id = (await self.get_customer(customer_id=customer["_id"])).get("defaultAddressId")
        return address_view(doc, default_id)

    async def set_default_address(self, *, customer: Document, address_id: str) -> dict[str, Any]:
        doc = await self.repo.get_address(customer["_id"], address_id)
        if doc is None:
            raise NotFound(ADDRESS_NOT_FOUND)
        default_id = await self._make_default(customer["_id"], address_id)
        return address_view(doc, default_id)

    async def _make_default(self, customer_id: str, address_id: str) -> str | None:
        updated = await self.repo.update_customer({"_id": customer_id}, set_fields={"defaultAddressId": address_id})
        return updated.get("defaultAddressId") if updated else None

    async def delete_address(self, *, customer: Document, address_id: str) -> None:
        deleted = await self.repo.update_address(
            customer["_id"], address_id, set_fields={"isActive": False, "deletedAt": now_iso()}
        )
        if deleted is None:
            raise NotFound(ADDRESS_NOT_FOUND)
        # Promote the most recently updated remaining address, only if the deleted one is
        # still the default (a concurrent "make default" wins).
        successor = await self.repo.newest_active_address(customer["_id"])
        await self.repo.update_customer(
            {"_id": customer["_id"], "defaultAddressId": address_id},
            set_fields={"defaultAddressId": successor["_id"] if successor else None},
        )

    # admin and service views

    async def admin_list(
        self,
        *,
        page: int,
        limit: int,
        search: str | None,
        active: bool | None,
        verified: bool | None,
        sort: str,
    ) -> dict[str, Any]:
        query: dict[str, Any] = {}
        if search:
            pattern = re.escape(search)
            query["$or"] = [
                {field: {"$regex": pattern, "$options": "i"}} for field in ("firstName", "lastName", "email", "phone")
            ]
        if active is not None:
            query["isActive"] = active
        if verified is not None:
            query["isVerified"] = verified
        direction = -1 if sort.startswith("-") else 1
        field = SORTABLE[sort.lstrip("-")]
        docs, total = await self.repo.list_customers(
            query, sort=[(field, direction), ("_id", direction)], skip=(page - 1) * limit, limit=limit
        )
        return {"customers": [customer_view(d) for d in docs], "pagination": pagination(page, limit, total)}

    async def admin_details(self, *, customer_id: str) -> dict[str, Any]:
        customer = await self.get_customer(customer_id=customer_id)
        docs = await self.repo.list_addresses(customer_id)
        return admin_customer_view(customer, sorted_address_views(docs, customer.get("defaultAddressId")))

    async def verify_for_service(self, *, customer_id: str) -> dict[str, Any]:
        customer = await self.repo.get_customer(customer_id)
        active = bool(customer and customer.get("isActive", True))
        return {
            "customerId": customer_id,
            "isValid": active,
            "isActive": active,
            "isVerified": bool(customer and customer.get("isVerified")),
            "firstName": customer.get("firstName") if customer else None,
            "lastName": customer.get("lastName") if customer else None,
            "email": customer.get("email") if customer else None,
            "timestamp": now_iso(),
        }

    async def bulk(self, *, customer_ids: list[str]) -> list[dict[str, Any]]:
        unique_ids = list(dict.fromkeys(customer_ids))
        found = {d["_id"]: d for d in await self.repo.get_customers(unique_ids, active_only=True)}
        result = []
        for customer_id in unique_ids:
            doc = found.get(customer_id)
            if doc is None:
                continue
            result.append(
                {
                    "id": doc["_id"],
                    "_id": doc["_id"],
                    "firstName": doc["firstName"],
                    "lastName": doc["lastName"],
                    "fullName": f"{doc['firstName']} {doc['lastName']}",
                    "email": doc["email"],
                    "phone": doc.get("phone"),
                    "avatar": doc.get("profileImage"),
                    "createdAt": doc.get("createdAt"),
                }
            )
        return result

    async def stats(self) -> dict[str, int]:
        return {
            "total": await self.repo.count_customers({}),
            "active": await self.repo.count_customers({"isActive": True}),
            "verified": await self.repo.count_customers({"isVerified": True}),
        }

    async def apply_order_stats(self, *, customer_id: str, order_total: Any, order_id: str | None) -> dict[str, Any]:
        cents = to_cents(order_total)
        await self.get_customer(customer_id=customer_id)
        if order_id:
            try:
                await self.repo.mark_order_applied(order_id=order_id, customer_id=customer_id, cents=cents)
            except DuplicateKeyError:
                current = await self.get_customer(customer_id=customer_id)
                return _stats_view(current, applied=False)
        updated = await self.repo.update_customer(
            {"_id": customer_id},
            inc={"totalOrders": 1, "totalSpentCents": cents, "loyaltyPoints": math.floor(cents / 100)},
        )
        if updated is None:
            if order_id:
                await self.repo.unmark_order_applied(order_id)
            raise NotFound(CUSTOMER_NOT_FOUND)
        return _stats_view(updated, applied=True)

    async def service_addresses(self, *, customer_id: str) -> list[dict[str, Any]]:
        return await self.list_addresses(customer_id=customer_id)

    # outbox

    async def _queue(self, kind: str, dedupe_key: str, payload: Mapping[str, Any]) -> None:
        await self.outbox.enqueue(kind=kind, dedupe_key=dedupe_key, payload=payload)
        self.outbox.send_soon(dedupe_key)

    async def _queue_email(self, template: str, customer_id: str) -> None:
        await self._queue(EMAIL_KIND, f"{template}:{customer_id}", {"template": template, "customerId": customer_id})

    async def build_email(self, row: Mapping[str, Any]) -> OutboxRequest | None:
        """Build an email call at send time from the current customer (outbox handler)."""
        template = row["payload"]["template"]
        customer = await self.repo.get_customer(row["payload"]["customerId"])
        if customer is None or not customer.get("isActive", True):
            return None
        name = f"{customer['firstName']} {customer['lastName']}"
        front = self.settings.FRONTEND_URL.rstrip("/")
        data: dict[str, Any] = {"customer_name": name}
        if template == "welcome_customer":
            data["login_url"] = f"{front}/customer/login"
        elif template == "email_verification":
            if customer.get("isVerified"):
                return None
            token = await self._new_token(
                customer["_id"], "emailVerification", self.settings.VERIFICATION_TOKEN_TTL_SECONDS
            )
            data.update(verification_link=f"{front}/customer/verify-email/{token}", expiry_time="24 hours")
        elif template == "password_reset":
            token = await self._new_token(customer["_id"], "passwordReset", self.settings.RESET_TOKEN_TTL_SECONDS)
            data.update(reset_link=f"{front}/customer/reset-password?token={token}", expiry_time="1 hour")
        return OutboxRequest(
            service="notifications",
            method="POST",
            path="/api/v1/send",
            json={"template": template, "recipient_email": customer["email"], "recipient_name": name, "data": data},
            timeout=5.0,
            permanent_statuses=NOTIFY_PERMANENT,
        )

    async def _new_token(self, customer_id: str, prefix: str, ttl_seconds: int) -> str:
        """A fresh single-use token; only its SHA-256 is stored, replacing any older one."""
        token, token_hash = new_secret_token()
        await self.repo.update_customer(
            {"_id": customer_id},
            set_fields={
                f"{prefix}TokenHash": token_hash,
                f"{prefix}Expires": now_iso(timedelta(seconds=ttl_seconds)),
            },
        )
        return token

    @staticmethod
    async def build_media_mark_used(row: Mapping[str, Any]) -> OutboxRequest:
        """Mark a profile image used in the media service (outbox handler)."""
        return OutboxRequest(
            service="media", method="POST", path=f"/api/v1/media/mark-used/{row['payload']['mediaId']}", timeout=5.0
        )


def _stats_view(customer: Mapping[str, Any], *, applied: bool) -> dict[str, Any]:
    return {
        "customerId": customer["_id"],
        "totalOrders": int(customer.get("totalOrders", 0)),
        "totalSpent": from_cents(int(customer.get("totalSpentCents", 0))),
        "loyaltyPoints": int(customer.get("loyaltyPoints", 0)),
        "applied": applied,
    }


def _raise_address_errors(data: AddressIn, *, partial: bool) -> None:
    errors = address_field_errors(data, partial=partial)
    if errors:
        raise ValidationFailed(errors=[{"field": f, "message": m} for f, m in errors])


def _address_fields(data: AddressIn, *, partial: bool) -> dict[str, Any]:
    """The stored fields of ``data``: all of them on create, the sent ones on update."""
    sent = data.model_fields_set
    fields: dict[str, Any] = {}
    for name in ADDRESS_FIELDS:
        if partial and name not in sent:
            continue
        value = getattr(data, name)
        if name == "coordinates" and value is not None:
            value = value.model_dump()
        fields[name] = value
    if not partial:
        fields["type"] = fields.get("type") or "home"
    elif "type" in fields and fields["type"] is None:
        fields["type"] = "home"
    if (
        fields.get("contactName") is None
        and (data.firstName or data.lastName)
        and (not partial or "contactName" not in sent)
    ):
        fields["contactName"] = " ".join(p for p in (data.firstName, data.lastName) if p)
    return fields
